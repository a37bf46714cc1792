// `minibuild cache ls` and `minibuild cache prune` (docs/cache.md, "Commands"): the local build
// cache (store/build_cache.hpp). The parsers and renderers are pure functions so tests check
// them without a store.
#pragma once

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

} // namespace minibuild::cli
