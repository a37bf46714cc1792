#include "fd_source.hpp"
#include "temp_area.hpp"

#include <minibuild/store/build_cache.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>

namespace minibuild::store {

namespace {

// An entry is a few hundred bytes; anything much larger is damage, not data.
constexpr std::size_t k_max_entry_file = 1024 * 1024;
constexpr std::string_view k_suffix = ".json";

std::string quoted(StoreFs& fs, std::string_view rel) {
  return "\"" + fs.absolute(rel) + "\"";
}

Result<CacheEntry> parse_entry(std::string_view text, const oci::Digest& expected_key,
                               const std::string& shown) {
  const auto corrupt = [&](const std::string& why) {
    return fail(Code::corrupt, "cache entry " + shown + ": " + why);
  };
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return corrupt("not a JSON object");
  }
  CacheEntry entry;
  try {
    const int version = json.at("version").get<int>();
    if (version > BuildCache::k_version) {
      return fail(Code::unsupported, "cache entry " + shown + " has version " +
                                         std::to_string(version) + "; this minibuild reads up to " +
                                         std::to_string(BuildCache::k_version));
    }
    auto key = oci::Digest::parse(json.at("key").get<std::string>());
    if (!key) {
      return corrupt("key: " + key.error().message());
    }
    if (*key != expected_key) {
      return corrupt("holds the entry of " + key->to_string());
    }
    entry.key = std::move(*key);
    entry.kind = json.at("kind").get<std::string>();
    const auto& layer = json.at("layer");
    if (!layer.is_null()) {
      auto descriptor = oci::from_json<oci::Descriptor>(layer);
      if (!descriptor) {
        return corrupt("layer: " + descriptor.error().message());
      }
      entry.layer = std::move(*descriptor);
      auto diff_id = oci::Digest::parse(json.at("diffID").get<std::string>());
      if (!diff_id) {
        return corrupt("diffID: " + diff_id.error().message());
      }
      entry.diff_id = std::move(*diff_id);
    }
    entry.created = json.at("created").get<std::string>();
    entry.created_by = json.at("createdBy").get<std::string>();
    entry.last_used = json.at("lastUsed").get<std::int64_t>();
    entry.size = json.at("size").get<std::uint64_t>();
  } catch (const nlohmann::json::exception& error) {
    return corrupt(error.what());
  }
  return entry;
}

std::string serialize_entry(const CacheEntry& entry) {
  nlohmann::json json = {{"version", BuildCache::k_version},
                         {"key", entry.key.to_string()},
                         {"kind", entry.kind},
                         {"layer", nullptr},
                         {"diffID", ""},
                         {"created", entry.created},
                         {"createdBy", entry.created_by},
                         {"lastUsed", entry.last_used},
                         {"size", entry.size}};
  if (entry.layer) {
    json["layer"] = oci::to_json(*entry.layer);
    json["diffID"] = entry.diff_id.to_string();
  }
  return json.dump() + "\n";
}

// "<64 hex>.json" → the key; anything else is not an entry name.
std::optional<oci::Digest> key_of_file(std::string_view name) {
  if (name.size() <= k_suffix.size() || name.substr(name.size() - k_suffix.size()) != k_suffix) {
    return std::nullopt;
  }
  auto key = oci::Digest::from_hex(oci::DigestAlgorithm::sha256,
                                   name.substr(0, name.size() - k_suffix.size()));
  if (!key) {
    return std::nullopt;
  }
  return *key;
}

// Best effort, for the "reclaimed" figure only: a tree we cannot walk counts what we saw.
std::uint64_t tree_size(const std::string& path) {
  std::uint64_t total = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(path, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    std::error_code stat_error;
    if (it->is_regular_file(stat_error) && !it->is_symlink(stat_error)) {
      const auto size = it->file_size(stat_error);
      total += stat_error ? 0 : size;
    }
  }
  return total;
}

} // namespace

std::string BuildCache::path_of(const oci::Digest& key) {
  return std::string(k_entries_dir) + "/" + key.hex() + std::string(k_suffix);
}

Result<std::optional<CacheEntry>> BuildCache::get(const oci::Digest& key) {
  const std::string rel = path_of(key);
  const std::string shown = quoted(m_fs, rel);
  auto fd = m_fs.open_read(rel);
  if (!fd) {
    if (fd.error().code() == Code::not_found) {
      return std::optional<CacheEntry>();
    }
    return fail(std::move(fd).error());
  }
  FdSource source(std::move(*fd), shown);
  auto text = oci::read_all(source, k_max_entry_file);
  if (!text) {
    if (text.error().code() == Code::io) {
      return fail(std::move(text).error());
    }
    return fail(Code::corrupt, "cache entry " + shown + ": " + text.error().message());
  }
  MB_TRY_ASSIGN(CacheEntry entry, parse_entry(*text, key, shown));
  return std::optional<CacheEntry>(std::move(entry));
}

// The replace steps (docs/store.md, "put cache entry"): [mkdir the entries directories on
// first use] → create temp → write → fsync → rename over the entry → fsync the directory. Every
// prefix leaves the old entry or the new one.
Result<void> BuildCache::write_entry(const CacheEntry& entry) {
  MB_TRY_ASSIGN(auto dir, m_fs.stat(k_entries_dir));
  if (!dir) {
    MB_TRY(m_fs.make_dir("cache"));
    MB_TRY(m_fs.make_dir("cache/entries"));
    MB_TRY(m_fs.make_dir(k_entries_dir));
  }
  const std::string text = serialize_entry(entry);
  MB_TRY_ASSIGN(const std::string path, m_temp.new_path("cache"));
  {
    MB_TRY_ASSIGN(UniqueFd fd, m_fs.create_file(path));
    auto written = [&]() -> Result<void> {
      MB_TRY(m_fs.write(fd.get(), std::span<const char>(text.data(), text.size())));
      MB_TRY(m_fs.sync_file(fd.get()));
      return {};
    }();
    if (!written) {
      fd.reset();
      (void)m_fs.remove_file(path); // best effort; clean_temp() catches what is left
      return written;
    }
  }
  auto renamed = m_fs.rename(path, path_of(entry.key));
  if (!renamed) {
    (void)m_fs.remove_file(path); // best effort, as above
    return renamed;
  }
  MB_TRY(m_fs.sync_dir(k_entries_dir));
  return {};
}

Result<void> BuildCache::put(const CacheEntry& entry) {
  const std::string context = "store cache entry " + entry.key.to_string();
  if (entry.key.empty() || entry.key.algorithm() != oci::DigestAlgorithm::sha256) {
    return fail(
        Error(Code::usage, "a cache key must be a sha256 digest").wrap("store cache entry"));
  }
  if (entry.layer && entry.diff_id.empty()) {
    return fail(Error(Code::usage, "a layer needs its diffID").wrap(context));
  }
  MB_TRY_CONTEXT(write_entry(entry), context);
  return {};
}

Result<bool> BuildCache::touch(const oci::Digest& key, std::int64_t now) {
  MB_TRY_ASSIGN(auto entry, get(key));
  if (!entry) {
    return false;
  }
  if (entry->last_used >= now - k_touch_resolution && entry->last_used <= now) {
    return true; // recent enough: a cached rebuild writes nothing
  }
  entry->last_used = now;
  MB_TRY_CONTEXT(write_entry(*entry), "record use of cache entry " + key.to_string());
  return true;
}

Result<CacheScan> BuildCache::scan() {
  CacheScan scan;
  MB_TRY_ASSIGN(auto files, m_fs.list(k_entries_dir));
  std::sort(files.begin(), files.end(),
            [](const FsEntry& a, const FsEntry& b) { return a.name < b.name; });
  for (const auto& file : files) {
    const std::string rel = std::string(k_entries_dir) + "/" + file.name;
    const auto key = key_of_file(file.name);
    if (!key) {
      scan.broken.push_back(BrokenCacheEntry{rel, {}, "name is not <sha256 hex>.json"});
      continue;
    }
    if (file.type != EntryType::file) {
      scan.broken.push_back(BrokenCacheEntry{rel, *key, "not a regular file"});
      continue;
    }
    auto entry = get(*key);
    if (!entry) {
      if (entry.error().code() == Code::io) {
        return fail(std::move(entry).error());
      }
      scan.broken.push_back(BrokenCacheEntry{rel, *key, entry.error().message()});
      continue;
    }
    if (*entry) { // else removed since the listing: not an entry any more
      scan.entries.push_back(std::move(**entry));
    }
  }
  return scan;
}

Result<std::vector<CacheEntry>> BuildCache::list() {
  MB_TRY_ASSIGN(CacheScan scan, this->scan());
  if (!scan.broken.empty()) {
    const auto& first = scan.broken.front();
    return fail(Code::corrupt, "cache entry " + quoted(m_fs, first.path) + ": " + first.detail +
                                   " (`minibuild fsck --repair` removes broken entries)");
  }
  return std::move(scan.entries);
}

Result<bool> BuildCache::remove(const oci::Digest& key) {
  const std::string rel = path_of(key);
  MB_TRY_ASSIGN(auto st, m_fs.stat(rel));
  if (!st) {
    return false;
  }
  MB_TRY_CONTEXT(m_fs.remove_file(rel), "remove cache entry " + key.to_string());
  return true;
}

Result<CachePruneResult> BuildCache::prune(const CachePrunePolicy& policy, std::int64_t now) {
  CachePruneResult result;
  MB_TRY_ASSIGN(CacheScan scan, this->scan());
  for (const auto& broken : scan.broken) {
    MB_TRY(m_fs.remove_tree(broken.path));
    ++result.broken_removed;
  }
  // Oldest first; ties by key so the order (and what survives) is deterministic.
  std::vector<CacheEntry>& entries = scan.entries;
  std::stable_sort(entries.begin(), entries.end(), [](const CacheEntry& a, const CacheEntry& b) {
    return a.last_used < b.last_used;
  });
  // A layer blob shared by several entries is freed only with the last of them, so it counts
  // once towards keep_storage.
  std::map<oci::Digest, std::size_t> users;
  std::uint64_t total = 0;
  for (const auto& entry : entries) {
    if (entry.layer && users[entry.layer->digest]++ == 0) {
      total += entry.size;
    }
  }
  const auto drop = [&](const CacheEntry& entry) -> Result<void> {
    MB_TRY(remove(entry.key));
    if (entry.layer && --users[entry.layer->digest] == 0) {
      total -= entry.size;
    }
    result.removed.push_back(entry);
    return {};
  };
  std::size_t next = 0;
  for (; next < entries.size(); ++next) {
    const CacheEntry& entry = entries[next];
    const bool expired = policy.keep_duration && now - entry.last_used > *policy.keep_duration;
    const bool over_size = policy.keep_storage && total > *policy.keep_storage;
    if (!policy.all && !expired && !over_size) {
      break; // sorted by age: everything after is newer and the size bound is met
    }
    MB_TRY(drop(entry));
  }
  return result;
}

Result<BuildCache::MountsRemoved> BuildCache::remove_mounts() {
  MountsRemoved removed;
  MB_TRY_ASSIGN(auto mounts, m_fs.list(k_mounts_dir));
  for (const auto& mount : mounts) {
    const std::string rel = std::string(k_mounts_dir) + "/" + mount.name;
    const std::uint64_t bytes = tree_size(m_fs.absolute(rel));
    MB_TRY_ASSIGN(const std::string gone, m_temp.new_path("removed-mount"));
    MB_TRY_CONTEXT(m_fs.rename(rel, gone), "remove cache mount " + m_fs.absolute(rel));
    MB_TRY(m_fs.sync_dir(k_mounts_dir));
    MB_TRY(m_fs.remove_tree(gone));
    ++removed.count;
    removed.bytes += bytes;
  }
  return removed;
}

} // namespace minibuild::store
