#include <minibuild/store/fsck.hpp>
#include <minibuild/store/gc.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <set>
#include <vector>

namespace minibuild::store {

namespace {

using Kind = FsckProblem::Kind;

constexpr std::string_view k_algorithms[] = {"sha256", "sha512"};

// Reads a blob to its end through the verifying reader; the only way to learn it is intact.
Result<void> verify_blob(BlobStore& blobs, const oci::Digest& digest) {
  MB_TRY_ASSIGN(auto source, blobs.get(digest));
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    MB_TRY_ASSIGN(std::size_t count, source->read(buffer));
    if (count == 0) {
      return {};
    }
  }
}

class Checker {
public:
  Checker(Store& store, Repair repair) : m_store(store), m_repair(repair) {}

  Result<FsckReport> run() {
    if (m_repair == Repair::yes) {
      MB_TRY_ASSIGN(m_report.temp_entries_removed, m_store.clean_temp());
    }
    MB_TRY(check_blobs());
    MB_TRY(check_layers());
    MB_TRY(check_names());
    MB_TRY(check_cache());
    return std::move(m_report);
  }

private:
  void report(Kind kind, std::string subject, std::string detail, bool repaired) {
    m_report.problems.push_back(FsckProblem{kind, std::move(subject), std::move(detail), repaired});
  }

  // Removes a stray or corrupt entry when repairing; returns whether it did.
  Result<bool> remove_entry(const std::string& rel) {
    if (m_repair == Repair::no) {
      return false;
    }
    MB_TRY(m_store.fs().remove_tree(rel));
    return true;
  }

  Result<void> check_blobs() {
    StoreFs& fs = m_store.fs();
    MB_TRY_ASSIGN(auto algorithms, fs.list("blobs"));
    for (const auto& algorithm_entry : algorithms) {
      const std::string dir = "blobs/" + algorithm_entry.name;
      const bool known = std::find(std::begin(k_algorithms), std::end(k_algorithms),
                                   algorithm_entry.name) != std::end(k_algorithms);
      if (!known || algorithm_entry.type != EntryType::directory) {
        MB_TRY_ASSIGN(bool removed, remove_entry(dir));
        report(Kind::stray_blob_entry, fs.absolute(dir), "not a digest algorithm directory",
               removed);
        continue;
      }
      MB_TRY_ASSIGN(auto entries, fs.list(dir));
      for (const auto& entry : entries) {
        const std::string rel = dir + "/" + entry.name;
        auto digest = oci::Digest::parse(algorithm_entry.name + ":" + entry.name);
        if (!digest || entry.type != EntryType::file) {
          MB_TRY_ASSIGN(bool removed, remove_entry(rel));
          report(Kind::stray_blob_entry, fs.absolute(rel),
                 digest ? "not a regular file" : "name is not a digest", removed);
          continue;
        }
        ++m_report.blobs_checked;
        auto verified = verify_blob(m_store.blobs(), *digest);
        if (!verified) {
          if (verified.error().code() == Code::io && verified.error().sys_errno() != EIO) {
            return fail(std::move(verified).error());
          }
          bool removed = false;
          if (m_repair == Repair::yes) {
            MB_TRY(m_store.blobs().remove(*digest));
            removed = true;
          }
          m_corrupt.insert(*digest);
          report(Kind::corrupt_blob, digest->to_string(), verified.error().what(), removed);
        }
      }
    }
    return {};
  }

  Result<void> check_layers() {
    StoreFs& fs = m_store.fs();
    MB_TRY_ASSIGN(auto algorithms, fs.list("layers"));
    for (const auto& algorithm_entry : algorithms) {
      const std::string dir = "layers/" + algorithm_entry.name;
      const bool known = std::find(std::begin(k_algorithms), std::end(k_algorithms),
                                   algorithm_entry.name) != std::end(k_algorithms);
      if (!known || algorithm_entry.type != EntryType::directory) {
        MB_TRY_ASSIGN(bool removed, remove_entry(dir));
        report(Kind::stray_layer_entry, fs.absolute(dir), "not a digest algorithm directory",
               removed);
        continue;
      }
      MB_TRY_ASSIGN(auto entries, fs.list(dir));
      for (const auto& entry : entries) {
        const std::string rel = dir + "/" + entry.name;
        auto diff_id = oci::Digest::parse(algorithm_entry.name + ":" + entry.name);
        if (!diff_id || entry.type != EntryType::directory) {
          MB_TRY_ASSIGN(bool removed, remove_entry(rel));
          report(Kind::stray_layer_entry, fs.absolute(rel),
                 diff_id ? "not a directory" : "name is not a digest", removed);
          continue;
        }
        ++m_report.layers_checked;
        auto problem = check_layer(*diff_id);
        if (!problem) {
          return fail(std::move(problem).error());
        }
        if (!problem->empty()) {
          bool removed = false;
          if (m_repair == Repair::yes) {
            MB_TRY(m_store.layers().remove(*diff_id));
            removed = true;
          }
          report(Kind::corrupt_layer, diff_id->to_string(), *problem, removed);
        }
      }
    }
    return {};
  }

  // The problem with one layer, or "" when it is intact. Only I/O failures are errors.
  Result<std::string> check_layer(const oci::Digest& diff_id) {
    auto info = m_store.layers().stat(diff_id);
    if (!info) {
      if (info.error().code() == Code::io) {
        return fail(std::move(info).error());
      }
      return info.error().what();
    }
    if (!*info) {
      // Gone: an outdated layer (metadata version 1) that stat() just retired, to be unpacked
      // again on its next use, or one a concurrent prune removed. Neither is damage.
      return std::string();
    }
    auto listing = list_content(m_store.layers().lower_dir(diff_id));
    if (!listing) {
      if (listing.error().code() == Code::not_found) {
        return "tree is missing: " + listing.error().what();
      }
      return fail(std::move(listing).error());
    }
    if (listing->digest != (*info)->content_digest) {
      return "content changed since it was unpacked: listing is " + listing->digest.to_string() +
             ", recorded " + (*info)->content_digest.to_string();
    }
    return std::string();
  }

  Result<void> check_names() {
    MB_TRY_ASSIGN(auto names, m_store.names().list());
    m_report.names_checked = names.size();
    std::vector<WalkRoot> roots;
    std::set<oci::Digest> named;
    for (const auto& name : names) {
      roots.push_back(WalkRoot{name.digest, name.media_type, "name " + name.name});
      named.insert(name.digest);
    }
    MB_TRY_ASSIGN(Reachability reach, find_reachable(m_store.blobs(), roots));
    for (const auto& issue : reach.issues) {
      switch (issue.kind) {
      case WalkIssue::Kind::missing:
        if (issue.referrer.rfind("name ", 0) == 0 && named.count(issue.digest) != 0) {
          report(Kind::dangling_name, issue.referrer.substr(5),
                 "points at " + issue.digest.to_string() + ", which is not in the store" +
                     (m_corrupt.count(issue.digest) != 0 ? " (removed as corrupt)" : ""),
                 false);
        } else {
          report(Kind::missing_blob, issue.digest.to_string(),
                 "referenced by " + issue.referrer + " but not in the store", false);
        }
        break;
      case WalkIssue::Kind::unreadable:
      case WalkIssue::Kind::unreadable_config:
        // A corrupt blob was already reported by the blob check.
        if (m_corrupt.count(issue.digest) == 0) {
          report(Kind::unreadable_document, issue.digest.to_string(),
                 "referenced by " + issue.referrer + ": " + issue.detail, false);
        }
        break;
      }
    }
    return {};
  }

  // After check_blobs, so a layer blob removed as corrupt leaves its entries dangling.
  Result<void> check_cache() {
    BuildCache& cache = m_store.cache();
    MB_TRY_ASSIGN(CacheScan scan, cache.scan());
    m_report.cache_entries_checked = scan.entries.size() + scan.broken.size();
    for (const auto& broken : scan.broken) {
      MB_TRY_ASSIGN(bool removed, remove_entry(broken.path));
      report(Kind::broken_cache_entry, m_store.fs().absolute(broken.path), broken.detail, removed);
    }
    for (const auto& entry : scan.entries) {
      if (!entry.layer) {
        continue;
      }
      MB_TRY_ASSIGN(auto stored, m_store.blobs().stat(entry.layer->digest));
      const bool corrupt = m_corrupt.count(entry.layer->digest) != 0;
      if (stored && !corrupt) {
        continue;
      }
      bool removed = false;
      if (m_repair == Repair::yes) {
        MB_TRY_ASSIGN(removed, cache.remove(entry.key));
      }
      report(Kind::dangling_cache_entry, entry.key.to_string(),
             "its layer " + entry.layer->digest.to_string() +
                 (!corrupt ? " is not in the store"
                  : stored ? " is corrupt"
                           : " is not in the store (removed as corrupt)"),
             removed);
    }
    return {};
  }

  Store& m_store;
  Repair m_repair;
  FsckReport m_report;
  std::set<oci::Digest> m_corrupt;
};

} // namespace

std::string_view kind_name(FsckProblem::Kind kind) {
  switch (kind) {
  case Kind::corrupt_blob:
    return "corrupt-blob";
  case Kind::stray_blob_entry:
    return "stray-blob-entry";
  case Kind::corrupt_layer:
    return "corrupt-layer";
  case Kind::stray_layer_entry:
    return "stray-layer-entry";
  case Kind::dangling_name:
    return "dangling-name";
  case Kind::missing_blob:
    return "missing-blob";
  case Kind::unreadable_document:
    return "unreadable-document";
  case Kind::broken_cache_entry:
    return "broken-cache-entry";
  case Kind::dangling_cache_entry:
    return "dangling-cache-entry";
  }
  return "unknown";
}

bool FsckReport::clean() const {
  for (const auto& problem : problems) {
    if (!problem.repaired) {
      return false;
    }
  }
  return true;
}

Result<FsckReport> fsck(Store& store, Repair repair, Wait wait) {
  const std::string context = "fsck " + store.root();
  MB_TRY_ASSIGN(StoreLock lock,
                store.lock(repair == Repair::yes ? LockMode::exclusive : LockMode::shared, wait)
                    .map_error([&](Error error) { return std::move(error).wrap(context); }));
  Checker checker(store, repair);
  auto report = checker.run();
  if (!report) {
    return fail(std::move(report).error().wrap(context));
  }
  return report;
}

} // namespace minibuild::store
