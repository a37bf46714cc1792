#include "fd_source.hpp"
#include "temp_area.hpp"

#include <minibuild/store/blob_store.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/layer_store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

namespace minibuild::store {

namespace {

constexpr std::string_view k_layers_dir = "layers";
constexpr std::string_view k_tree = "diff";
constexpr std::string_view k_metadata = "layer.json";
constexpr std::size_t k_max_metadata = 64 * 1024;

std::string dir_of(oci::DigestAlgorithm algorithm) {
  return std::string(k_layers_dir) + "/" + std::string(oci::algorithm_name(algorithm));
}

std::string serialize_info(const LayerInfo& info) {
  nlohmann::json json = {
      {"version", k_layer_metadata_version},
      {"diffID", info.diff_id.to_string()},
      {"size", info.size},
      {"created", info.created},
      {"contentDigest", info.content_digest.to_string()},
  };
  if (!info.source_blob.empty()) {
    json["blob"] = info.source_blob.to_string();
  }
  return json.dump() + "\n";
}

Result<std::pair<int, LayerInfo>> parse_info(std::string_view text, const std::string& shown) {
  const auto corrupt = [&](const std::string& why) {
    return fail(Code::corrupt, "layer metadata " + shown + ": " + why);
  };
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return corrupt("not a JSON object");
  }
  LayerInfo info;
  int version = 0;
  try {
    version = json.at("version").get<int>();
    if (version > k_layer_metadata_version) {
      return fail(Code::unsupported, "layer metadata " + shown + " has version " +
                                         std::to_string(version) + "; this minibuild reads up to " +
                                         std::to_string(k_layer_metadata_version));
    }
    MB_TRY_ASSIGN(info.diff_id, oci::Digest::parse(json.at("diffID").get<std::string>()));
    MB_TRY_ASSIGN(info.content_digest,
                  oci::Digest::parse(json.at("contentDigest").get<std::string>()));
    info.size = json.at("size").get<std::uint64_t>();
    info.created = json.at("created").get<std::int64_t>();
    if (json.contains("blob")) {
      MB_TRY_ASSIGN(info.source_blob, oci::Digest::parse(json.at("blob").get<std::string>()));
    }
  } catch (const nlohmann::json::exception& error) {
    return corrupt(error.what());
  }
  return std::make_pair(version, std::move(info));
}

// Removes a tree of the temporary area unless disarmed (once it has been renamed into place).
struct TreeGuard {
  StoreFs& fs;
  std::string path;
  bool armed = true;
  TreeGuard(StoreFs& fs_, std::string path_) : fs(fs_), path(std::move(path_)) {}
  ~TreeGuard() {
    if (armed) {
      (void)fs.remove_tree(path); // best effort; clean_temp() catches what is left
    }
  }
  TreeGuard(const TreeGuard&) = delete;
  TreeGuard& operator=(const TreeGuard&) = delete;
};

bool is_bookkeeping_xattr(std::string_view name) {
  return name.starts_with("user.overlay.") || name.starts_with("trusted.overlay.");
}

Result<std::optional<std::string>> read_xattr(const std::string& path, const std::string& name) {
  std::string value(256, '\0');
  const ssize_t size = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
  if (size < 0) {
    if (errno == ENODATA || errno == ERANGE) {
      return std::optional<std::string>(); // gone, or too long to be a flag we keep
    }
    return fail_errno(errno, "read xattr " + name + " of \"" + path + "\"");
  }
  value.resize(static_cast<std::size_t>(size));
  return std::optional<std::string>(std::move(value));
}

// Leaves only what a lower dir may carry of overlayfs's own xattrs: user.overlay.opaque = "y".
// An upper dir also holds origin/impure/redirect/nlink/uuid records about *its* lower stack
// (overlayfs.rst "Index", "Redirect dir", "Metacopy"); in a lower dir they would be misread,
// and "x" as opaque value means "has xattr whiteouts" there (Linux 6.7+). A root-mounted
// overlay without userxattr writes trusted.overlay.opaque, which is translated. trusted.* is
// invisible (not listed) to a process without CAP_SYS_ADMIN, so nothing fails there.
Result<void> strip_bookkeeping(const std::string& path, bool is_dir) {
  std::string names(4096, '\0');
  ssize_t length = ::llistxattr(path.c_str(), names.data(), names.size());
  if (length < 0 && errno == ERANGE) {
    length = ::llistxattr(path.c_str(), nullptr, 0);
    if (length >= 0) {
      names.assign(static_cast<std::size_t>(length), '\0');
      length = ::llistxattr(path.c_str(), names.data(), names.size());
    }
  }
  if (length < 0 && errno != ENOTSUP) {
    return fail_errno(errno, "list xattrs of \"" + path + "\"");
  }
  names.resize(length < 0 ? 0 : static_cast<std::size_t>(length));
  for (std::size_t start = 0; start < names.size();) {
    const std::string name(names.c_str() + start);
    start += name.size() + 1;
    if (!is_bookkeeping_xattr(name)) {
      continue;
    }
    MB_TRY_ASSIGN(auto value, read_xattr(path, name));
    const bool opaque = is_dir && value == std::optional<std::string>("y") &&
                        (name == layer::k_opaque_xattr || name == "trusted.overlay.opaque");
    if (opaque && name == layer::k_opaque_xattr) {
      continue;
    }
    if (opaque && ::lsetxattr(path.c_str(), layer::k_opaque_xattr, "y", 1, 0) != 0) {
      return fail_errno(errno,
                        std::string("set xattr ") + layer::k_opaque_xattr + " on \"" + path + "\"");
    }
    if (::lremovexattr(path.c_str(), name.c_str()) != 0 && errno != ENODATA) {
      return fail_errno(errno, "remove xattr " + name + " from \"" + path + "\"");
    }
  }
  if (!is_dir) {
    return {};
  }
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return fail_errno(errno, "open \"" + path + "\"");
  }
  std::vector<std::pair<std::string, bool>> children;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    struct stat st {};
    if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      const int error = errno;
      ::closedir(dir);
      return fail_errno(error, "stat \"" + path + "/" + name + "\"");
    }
    children.emplace_back(name, S_ISDIR(st.st_mode));
    errno = 0;
  }
  const int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) {
    return fail_errno(read_errno, "readdir \"" + path + "\"");
  }
  for (const auto& [name, child_is_dir] : children) {
    MB_TRY(strip_bookkeeping(path + "/" + name, child_is_dir));
  }
  return {};
}

} // namespace

std::string LayerStore::path_of(const oci::Digest& diff_id) {
  return dir_of(diff_id.algorithm()) + "/" + diff_id.hex();
}

std::string LayerStore::lower_dir(const oci::Digest& diff_id) const {
  return m_fs.absolute(path_of(diff_id) + "/" + std::string(k_tree));
}

Result<std::optional<LayerStore::StoredInfo>> LayerStore::read_info(const std::string& dir,
                                                                    const oci::Digest& diff_id) {
  MB_TRY_ASSIGN(auto st, m_fs.stat(dir));
  if (!st) {
    return std::optional<StoredInfo>();
  }
  const std::string metadata_path = dir + "/" + std::string(k_metadata);
  const std::string shown = "\"" + m_fs.absolute(metadata_path) + "\"";
  auto fd = m_fs.open_read(metadata_path);
  if (!fd) {
    if (fd.error().code() == Code::not_found) {
      return fail(Code::corrupt,
                  "unpacked layer " + diff_id.to_string() + " has no metadata " + shown);
    }
    return fail(std::move(fd).error());
  }
  FdSource source(std::move(*fd), shown);
  MB_TRY_ASSIGN(std::string text, oci::read_all(source, k_max_metadata));
  MB_TRY_ASSIGN(auto parsed, parse_info(text, shown));
  if (parsed.second.diff_id != diff_id) {
    return fail(Code::corrupt,
                "layer metadata " + shown + " names diffID " + parsed.second.diff_id.to_string());
  }
  return std::optional<StoredInfo>(StoredInfo{parsed.first, std::move(parsed.second)});
}

Result<std::optional<LayerInfo>> LayerStore::stat(const oci::Digest& diff_id) {
  if (diff_id.empty()) {
    return fail(Code::internal, "stat layer: diffID is empty");
  }
  MB_TRY_ASSIGN(auto stored, read_info(path_of(diff_id), diff_id));
  if (!stored) {
    return std::optional<LayerInfo>();
  }
  if (stored->version < k_layer_metadata_version) {
    MB_TRY(retire_outdated(diff_id));
    return std::optional<LayerInfo>();
  }
  return std::optional<LayerInfo>(std::move(stored->info));
}

Result<void> LayerStore::retire_outdated(const oci::Digest& diff_id) {
  const std::string context = "remove outdated layer " + diff_id.to_string();
  const std::string path = path_of(diff_id);
  MB_TRY_ASSIGN(const std::string temp, m_temp.new_path("outdated-layer"));
  auto moved = m_fs.rename(path, temp);
  if (!moved) {
    if (moved.error().sys_errno() == ENOENT) {
      return {}; // another process retired it first
    }
    return fail(std::move(moved).error().wrap(context));
  }
  TreeGuard guard(m_fs, temp);
  // Another process may have retired the old directory and stored a current one between our
  // read and our rename: that one goes back (or, if yet another appeared, away).
  auto taken = read_info(temp, diff_id);
  if (taken && *taken && (*taken)->version == k_layer_metadata_version) {
    auto back = m_fs.rename(temp, path);
    if (back) {
      guard.armed = false;
    } else if (back.error().sys_errno() != ENOTEMPTY && back.error().sys_errno() != EEXIST) {
      return fail(std::move(back).error().wrap(context));
    }
  }
  MB_TRY_CONTEXT(m_fs.sync_dir(dir_of(diff_id.algorithm())), context);
  if (guard.armed) {
    guard.armed = false;
    MB_TRY_CONTEXT(m_fs.remove_tree(temp), context);
  }
  return {};
}

Result<LayerInfo> LayerStore::unpack(const oci::Digest& diff_id, const oci::Digest& source_blob,
                                     const LayerExtractor& extract) {
  if (diff_id.empty()) {
    return fail(Code::internal, "unpack layer: diffID is empty");
  }
  const std::string context = "unpack layer " + diff_id.to_string();
  MB_TRY_ASSIGN(auto existing, stat(diff_id));
  if (existing) {
    return *existing;
  }

  // Steps (docs/store.md): mkdir temp → mkdir temp/diff → extract → commit(). Until the
  // rename in commit() the layer does not exist; after it, it is whole.
  MB_TRY_ASSIGN(const std::string temp, m_temp.new_path("layer"));
  TreeGuard guard(m_fs, temp);
  const std::string tree = temp + "/" + std::string(k_tree);
  MB_TRY_CONTEXT(m_fs.make_dir(temp), context);
  MB_TRY_CONTEXT(m_fs.make_dir(tree), context);
  MB_TRY_CONTEXT(extract(m_fs.absolute(tree)), context);
  guard.armed = false; // commit() owns it now
  return commit(diff_id, source_blob, temp, context);
}

Result<LayerInfo> LayerStore::commit(const oci::Digest& diff_id, const oci::Digest& source_blob,
                                     const std::string& temp, const std::string& context) {
  // Steps: fingerprint → write+fsync layer.json → syncfs → rename temp into layers/ → fsync
  // layers/<alg>.
  TreeGuard guard(m_fs, temp);
  const std::string tree = temp + "/" + std::string(k_tree);
  MB_TRY_ASSIGN(ContentListing listing, list_content(m_fs.absolute(tree)));
  LayerInfo info;
  info.diff_id = diff_id;
  info.source_blob = source_blob;
  info.size = listing.size;
  info.content_digest = listing.digest;
  info.created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  const std::string text = serialize_info(info);
  {
    MB_TRY_ASSIGN(UniqueFd fd, m_fs.create_file(temp + "/" + std::string(k_metadata)));
    MB_TRY_CONTEXT(m_fs.write(fd.get(), std::span<const char>(text.data(), text.size())), context);
    MB_TRY_CONTEXT(m_fs.sync_file(fd.get()), context);
  }
  // One syncfs flushes every file and directory the extractor wrote, instead of an fsync each.
  MB_TRY_CONTEXT(m_fs.sync_fs(), context);

  const std::string dir = dir_of(diff_id.algorithm());
  MB_TRY_ASSIGN(auto dir_stat, m_fs.stat(dir));
  if (!dir_stat) {
    MB_TRY_CONTEXT(m_fs.make_dir(dir), context);
  }
  auto renamed = m_fs.rename(temp, path_of(diff_id));
  if (!renamed) {
    const int error = renamed.error().sys_errno();
    if (error == ENOTEMPTY || error == EEXIST) {
      // Another process stored the same layer first; its copy is as good as ours.
      MB_TRY_ASSIGN(auto theirs, stat(diff_id));
      if (theirs) {
        return *theirs;
      }
    }
    return fail(std::move(renamed).error().wrap(context));
  }
  guard.armed = false;
  MB_TRY_CONTEXT(m_fs.sync_dir(dir), context);
  return info;
}

Result<LayerInfo> LayerStore::adopt(const oci::Digest& diff_id, const std::string& tree_dir) {
  if (diff_id.empty()) {
    return fail(Code::internal, "adopt layer: diffID is empty");
  }
  const std::string context = "adopt layer " + diff_id.to_string();
  // Only a tree of our temporary area is on the store's filesystem (rename works) and free of
  // other users; anything else is a caller bug, and is left alone.
  const std::string temp_root = m_fs.absolute(TempArea::k_dir) + "/";
  std::string rest = tree_dir.starts_with(temp_root) ? tree_dir.substr(temp_root.size()) : "";
  while (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  const bool climbs = rest == ".." || rest.starts_with("../") || rest.ends_with("/..") ||
                      rest.find("/../") != std::string::npos;
  if (rest.empty() || climbs) {
    return fail(Code::internal, context + ": \"" + tree_dir + "\" is not below the store's " +
                                    "temporary area " + temp_root);
  }
  const std::string rel = std::string(TempArea::k_dir) + "/" + rest;
  MB_TRY_ASSIGN(auto tree_stat, m_fs.stat(rel));
  if (!tree_stat || tree_stat->type != EntryType::directory) {
    return fail(Code::internal, context + ": \"" + tree_dir + "\" is not a directory");
  }
  TreeGuard given(m_fs, rel);

  MB_TRY_ASSIGN(auto existing, stat(diff_id));
  if (existing) {
    given.armed = false;
    MB_TRY_CONTEXT(m_fs.remove_tree(rel), context);
    return *existing;
  }
  // Steps: mkdir temp → rename the tree to temp/diff → strip overlay bookkeeping → commit(),
  // the same tail as unpack().
  MB_TRY_ASSIGN(const std::string temp, m_temp.new_path("layer"));
  TreeGuard guard(m_fs, temp);
  MB_TRY_CONTEXT(m_fs.make_dir(temp), context);
  MB_TRY_CONTEXT(m_fs.rename(rel, temp + "/" + std::string(k_tree)), context);
  given.armed = false;
  MB_TRY_CONTEXT(strip_bookkeeping(m_fs.absolute(temp + "/" + std::string(k_tree)), true), context);
  guard.armed = false; // commit() owns it now
  return commit(diff_id, {}, temp, context);
}

Result<std::string> LayerStore::new_work_dir(std::string_view prefix) {
  MB_TRY_ASSIGN(const std::string temp, m_temp.new_path(prefix));
  MB_TRY_CONTEXT(m_fs.make_dir(temp), "create a work directory");
  return m_fs.absolute(temp);
}

Result<LayerInfo> LayerStore::unpack_blob(const oci::Digest& diff_id, BlobStore& blobs,
                                          const oci::Descriptor& blob,
                                          const layer::ApplyOptions& options) {
  // Stored trees are overlay lower dirs: whiteouts recorded, not carried out.
  layer::ApplyOptions overlay = options;
  overlay.whiteouts = layer::WhiteoutStyle::overlay;
  return unpack(diff_id, blob.digest, [&](const std::string& target) -> Result<void> {
    MB_TRY_ASSIGN(auto source, blobs.get(blob.digest, static_cast<std::uint64_t>(blob.size)));
    MB_TRY_ASSIGN(layer::ApplyResult applied, layer::apply_layer(*source, target, overlay));
    // apply_layer read the blob to its end, so the verifying reader has checked the blob; the
    // diffID is the one thing left to check, and only the uncompressed stream can tell.
    if (applied.diff_id != diff_id) {
      return fail(Code::corrupt, "blob " + blob.digest.to_string() + " unpacks to diffID " +
                                     applied.diff_id.to_string());
    }
    return {};
  });
}

Result<void> LayerStore::remove(const oci::Digest& diff_id) {
  if (diff_id.empty()) {
    return fail(Code::internal, "remove layer: diffID is empty");
  }
  const std::string context = "remove layer " + diff_id.to_string();
  const std::string path = path_of(diff_id);
  MB_TRY_ASSIGN(auto st, m_fs.stat(path));
  if (!st) {
    return {};
  }
  MB_TRY_ASSIGN(const std::string temp, m_temp.new_path("removed-layer"));
  MB_TRY_CONTEXT(m_fs.rename(path, temp), context);
  MB_TRY_CONTEXT(m_fs.sync_dir(dir_of(diff_id.algorithm())), context);
  MB_TRY_CONTEXT(m_fs.remove_tree(temp), context);
  return {};
}

Result<std::vector<oci::Digest>> LayerStore::list() {
  std::vector<oci::Digest> ids;
  for (const auto algorithm : {oci::DigestAlgorithm::sha256, oci::DigestAlgorithm::sha512}) {
    MB_TRY_ASSIGN(auto entries, m_fs.list(dir_of(algorithm)));
    for (const auto& entry : entries) {
      if (entry.type != EntryType::directory) {
        continue;
      }
      auto digest = oci::Digest::from_hex(algorithm, entry.name);
      if (digest) {
        ids.push_back(std::move(*digest));
      }
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

} // namespace minibuild::store
