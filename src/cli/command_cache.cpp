// `minibuild cache ls|prune|gc`.
#include "command_cache.hpp"

#include "command_store.hpp"
#include "registry_access.hpp"
#include "store_access.hpp"
#include "store_format.hpp"

#include <minibuild/store/gc.hpp>
#include <minibuild/store/store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <memory>
#include <optional>

namespace minibuild::cli {

namespace {

// docker history cuts CREATED BY at 45 characters; the cache table does the same.
constexpr std::size_t k_created_by_width = 45;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// "<digits>[.<digits>]" at the start of `text`; advances it. nullopt when no digit is there.
std::optional<double> take_number(std::string_view& text) {
  std::size_t end = 0;
  bool digits = false;
  bool dot = false;
  while (end < text.size()) {
    const char c = text[end];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++end;
  }
  if (!digits) {
    return std::nullopt;
  }
  // Digits and one dot only, so this is a valid decimal; strtod does not need a terminator
  // beyond the copy.
  const std::string number(text.substr(0, end));
  text.remove_prefix(end);
  return std::strtod(number.c_str(), nullptr);
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

} // namespace

Result<std::int64_t> parse_duration(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return fail(Code::usage, "duration \"" + std::string(text) + "\": " + why +
                                 " (expected e.g. 168h, 30m, 7d, 1h30m)");
  };
  std::string_view rest = text;
  if (rest.empty()) {
    return bad("empty");
  }
  double total = 0;
  while (!rest.empty()) {
    const auto number = take_number(rest);
    if (!number) {
      return bad("expected a number");
    }
    std::size_t unit_length = 0;
    while (unit_length < rest.size() &&
           std::isalpha(static_cast<unsigned char>(rest[unit_length]))) {
      ++unit_length;
    }
    const std::string unit = lower(rest.substr(0, unit_length));
    rest.remove_prefix(unit_length);
    double scale = 0;
    if (unit == "s") {
      scale = 1;
    } else if (unit == "m") {
      scale = 60;
    } else if (unit == "h") {
      scale = 3600;
    } else if (unit == "d") {
      scale = 86400;
    } else if (unit == "w") {
      scale = 7 * 86400;
    } else {
      return bad(unit.empty() ? "a number needs a unit (s, m, h, d, w)"
                              : "unknown unit \"" + unit + "\"");
    }
    total += *number * scale;
  }
  if (total > static_cast<double>(std::numeric_limits<std::int64_t>::max() / 2)) {
    return bad("too large");
  }
  return static_cast<std::int64_t>(std::llround(total));
}

Result<std::uint64_t> parse_size(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return fail(Code::usage, "size \"" + std::string(text) + "\": " + why +
                                 " (expected e.g. 10GB, 500MB, 1.5GiB)");
  };
  std::string_view rest = text;
  const auto number = take_number(rest);
  if (!number) {
    return bad("expected a number");
  }
  const std::string unit = lower(rest);
  struct Unit {
    std::string_view name;
    double scale;
  };
  constexpr double k_ki = 1024.0;
  constexpr Unit k_units[] = {{"", 1},
                              {"b", 1},
                              {"k", 1e3},
                              {"kb", 1e3},
                              {"m", 1e6},
                              {"mb", 1e6},
                              {"g", 1e9},
                              {"gb", 1e9},
                              {"t", 1e12},
                              {"tb", 1e12},
                              {"ki", k_ki},
                              {"kib", k_ki},
                              {"mi", k_ki * k_ki},
                              {"mib", k_ki * k_ki},
                              {"gi", k_ki * k_ki * k_ki},
                              {"gib", k_ki * k_ki * k_ki},
                              {"ti", k_ki * k_ki * k_ki * k_ki},
                              {"tib", k_ki * k_ki * k_ki * k_ki}};
  for (const Unit& candidate : k_units) {
    if (candidate.name == unit) {
      const double bytes = *number * candidate.scale;
      if (bytes >= static_cast<double>(std::numeric_limits<std::uint64_t>::max() / 2)) {
        return bad("too large");
      }
      return static_cast<std::uint64_t>(std::llround(bytes));
    }
  }
  return bad("unknown unit \"" + std::string(rest) + "\"");
}

Result<store::CachePrunePolicy> cache_prune_policy(const CachePruneCommandOptions& options) {
  store::CachePrunePolicy policy;
  policy.all = options.all;
  if (!options.keep_duration.empty()) {
    MB_TRY_ASSIGN(policy.keep_duration, parse_duration(options.keep_duration));
  }
  if (!options.keep_storage.empty()) {
    MB_TRY_ASSIGN(policy.keep_storage, parse_size(options.keep_storage));
  }
  if (!policy.all && !policy.keep_duration && !policy.keep_storage) {
    // Refused rather than guessed: "remove everything" and "remove nothing" are both surprising.
    return fail(Code::usage,
                "cache prune needs --keep-duration DURATION, --keep-storage SIZE or -a (all)");
  }
  return policy;
}

std::string render_cache_ls(std::vector<store::CacheEntry> entries, const CacheLsOptions& options,
                            std::int64_t now) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const store::CacheEntry& a, const store::CacheEntry& b) {
                     return a.last_used != b.last_used ? a.last_used > b.last_used : a.key < b.key;
                   });
  std::string out;
  if (options.format == "json") {
    for (const auto& entry : entries) {
      nlohmann::ordered_json line = {
          {"Key", entry.key.to_string()},
          {"Kind", entry.kind},
          {"Layer", entry.layer ? nlohmann::ordered_json(entry.layer->digest.to_string())
                                : nlohmann::ordered_json()},
          {"DiffID", entry.layer ? nlohmann::ordered_json(entry.diff_id.to_string())
                                 : nlohmann::ordered_json()},
          {"Size", entry.size},
          {"CreatedAt", entry.created},
          {"LastUsed", entry.last_used},
          {"CreatedBy", entry.created_by},
      };
      out += line.dump() + "\n";
    }
    return out;
  }
  std::vector<std::vector<std::string>> table;
  table.push_back({"KEY", "KIND", "SIZE", "LAST USED", "CREATED BY"});
  for (const auto& entry : entries) {
    table.push_back({short_id(entry.key.to_string()), entry.kind,
                     entry.layer ? human_size(entry.size) : "0B", human_age(now - entry.last_used),
                     ellipsis(entry.created_by, k_created_by_width)});
  }
  return format_table(table);
}

Result<void> run_cache_ls(Context& context, const CacheLsOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(auto lock, store->lock(store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(store::CacheScan scan, store->cache().scan());
  for (const auto& broken : scan.broken) {
    std::fprintf(stderr,
                 "minibuild: warning: cache entry \"%s\" is unreadable (`minibuild fsck --repair` "
                 "removes it): %s\n",
                 store->fs().absolute(broken.path).c_str(), broken.detail.c_str());
  }
  print(render_cache_ls(std::move(scan.entries), options,
                        static_cast<std::int64_t>(std::time(nullptr))));
  return {};
}

Result<void> run_cache_prune(Context& context, const CachePruneCommandOptions& options) {
  MB_TRY_ASSIGN(store::CachePrunePolicy policy, cache_prune_policy(options));
  MB_TRY_ASSIGN(auto store, open_store(context));
  store::PruneOptions prune_options;
  prune_options.cache = policy;
  prune_options.cache_mounts = options.all ? store::CacheMounts::remove : store::CacheMounts::keep;
  MB_TRY_ASSIGN(auto report, store::prune(*store, prune_options));
  for (const auto& warning : report.warnings) {
    std::fprintf(stderr, "minibuild: warning: %s\n", warning.c_str());
  }
  print(render_prune(report));
  return {};
}

std::string render_cache_gc(const CacheGcReport& report, std::int64_t now) {
  const CacheGcSelection& selection = report.selection;
  std::string out;
  for (const auto& entry : selection.removed) {
    out += "removed cache entry " + entry.key.to_string() + " (" + entry.kind + ", " +
           (entry.layer ? human_size(entry.size) : "0B") + ", last used " +
           human_age(now - entry.last_used) + ")\n";
  }
  for (const auto& mount : selection.removed_mounts) {
    out += "removed cache mount " + mount.display() + " (" +
           human_size(static_cast<std::uint64_t>(mount.layer.size)) + ", exported " +
           human_age(now - mount.last_used) + ")\n";
  }
  if (selection.undated != 0) {
    out += "kept " + std::to_string(selection.undated) +
           " undated cache entries and mounts (exported before minibuild dated them; the next "
           "--cache-to dates them)\n";
  }
  const std::string kept = std::to_string(selection.kept.size()) + " cache entries and " +
                           std::to_string(selection.kept_mounts.size()) + " cache mounts";
  if (!report.rewritten) {
    return out + report.target + ": nothing to remove; kept " + kept + ", manifest " +
           report.old_manifest.to_string() + " unchanged\n";
  }
  out += report.target + ": removed " + std::to_string(selection.removed.size()) +
         " cache entries and " + std::to_string(selection.removed_mounts.size()) +
         " cache mounts, " + std::to_string(selection.removed_layers.size()) + " layers (" +
         human_size(selection.removed_bytes) + ") no longer listed; kept " + kept + "\n";
  out += "manifest " + report.old_manifest.to_string() + " -> " + report.new_manifest.to_string() +
         "\n";
  if (report.blobs_deleted != 0) {
    out += "deleted " + std::to_string(report.blobs_deleted) + " blobs from the layout (" +
           human_size(report.bytes_deleted) + ")\n";
  }
  return out;
}

Result<void> run_cache_gc(Context& context, const CacheGcOptions& options) {
  MB_TRY_ASSIGN(const CacheSpec spec, parse_cache_gc_target(options.target));
  MB_TRY_ASSIGN(const std::int64_t keep_duration, parse_duration(options.keep_duration));
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(auto lock, store->lock(store::LockMode::shared, store::Wait::yes));
  std::unique_ptr<RegistryAccess> access;
  auto registries = [&]() -> Result<RegistryAccess*> {
    if (!access) {
      MB_TRY_ASSIGN(access, RegistryAccess::open(context));
    }
    return access.get();
  };
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  MB_TRY_ASSIGN(const CacheGcReport report, gc_cache(spec, keep_duration, now, *store, registries));
  print(render_cache_gc(report, now));
  return {};
}

} // namespace minibuild::cli
