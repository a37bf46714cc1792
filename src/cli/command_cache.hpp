// `minibuild cache ls`, `minibuild cache prune` (docs/cache.md, "Commands"): the local build
// cache (store/build_cache.hpp); `minibuild cache gc`: a shared cache artifact in a registry or
// a layout (cache_transfer.hpp). The parsers and renderers are pure functions so tests check
// them without a store.
#pragma once

#include "cache_transfer.hpp"
#include "commands.hpp"

#include <minibuild/base/error.hpp>
#include <minibuild/store/build_cache.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::cli {

/// A duration in seconds: one or more <number><unit> terms ("168h", "1h30m", "1.5d"), units s,
/// m, h, d (24h) and w (7d). Fails with Code::usage naming the text: no unit, an unknown unit,
/// a negative or empty value.
Result<std::int64_t> parse_duration(std::string_view text);

/// A size in bytes: <number>[unit], the number possibly fractional ("1.5GiB"). Units, case
/// ignored: B; k/kB, M/MB, G/GB, T/TB as powers of 1000 (as `minibuild images` prints sizes);
/// Ki/KiB, Mi/MiB, Gi/GiB, Ti/TiB as powers of 1024. No unit means bytes. Fails with
/// Code::usage naming the text.
Result<std::uint64_t> parse_size(std::string_view text);

/// The store's prune policy for `options`; Code::usage when no bound and no -a is given or a
/// value does not parse.
Result<store::CachePrunePolicy> cache_prune_policy(const CachePruneCommandOptions& options);

/// `minibuild cache ls` output for `entries` at time `now` (seconds since the epoch): a table
/// (KEY KIND SIZE LAST USED CREATED BY), most recently used first, or JSON lines.
std::string render_cache_ls(std::vector<store::CacheEntry> entries, const CacheLsOptions& options,
                            std::int64_t now);

/// `minibuild cache gc TARGET --keep-duration DURATION` (app.cpp fills it).
struct CacheGcOptions {
  std::string target; ///< REG/REPO[:TAG], type=registry,ref=… or type=local,src=DIR[,tag=T]
  std::string keep_duration; ///< as cache prune --keep-duration; required
};

/// Rewrites the shared cache artifact at options.target without the entries and cache mounts
/// last used longer ago than the duration (cache_transfer.hpp gc_cache), holding the store lock
/// shared (the new config and manifest pass through the store), and prints render_cache_gc.
/// Code::usage for a bad target or duration, Code::not_found when there is no cache there.
Result<void> run_cache_gc(Context& context, const CacheGcOptions& options);

/// The output of `cache gc` at time `now`: one line per removed entry and mount, a line on
/// undated items kept, and a summary naming the old and the new manifest (and, for a layout,
/// the blobs deleted).
std::string render_cache_gc(const CacheGcReport& report, std::int64_t now);

} // namespace minibuild::cli
