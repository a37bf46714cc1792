#include "fd_source.hpp"
#include "temp_area.hpp"

#include <minibuild/store/blob_store.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/layer_store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace minibuild::store {

namespace {

constexpr std::string_view k_layers_dir = "layers";
constexpr std::string_view k_tree = "diff";
constexpr std::string_view k_metadata = "layer.json";
constexpr int k_metadata_version = 1;
constexpr std::size_t k_max_metadata = 64 * 1024;

std::string dir_of(oci::DigestAlgorithm algorithm) {
  return std::string(k_layers_dir) + "/" + std::string(oci::algorithm_name(algorithm));
}

std::string serialize_info(const LayerInfo& info) {
  nlohmann::json json = {
      {"version", k_metadata_version},
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

Result<LayerInfo> parse_info(std::string_view text, const std::string& shown) {
  const auto corrupt = [&](const std::string& why) {
    return fail(Code::corrupt, "layer metadata " + shown + ": " + why);
  };
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return corrupt("not a JSON object");
  }
  LayerInfo info;
  try {
    const int version = json.at("version").get<int>();
    if (version > k_metadata_version) {
      return fail(Code::unsupported, "layer metadata " + shown + " has version " +
                                         std::to_string(version) + "; this minibuild reads up to " +
                                         std::to_string(k_metadata_version));
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
  return info;
}

} // namespace

std::string LayerStore::path_of(const oci::Digest& diff_id) {
  return dir_of(diff_id.algorithm()) + "/" + diff_id.hex();
}

std::string LayerStore::lower_dir(const oci::Digest& diff_id) const {
  return m_fs.absolute(path_of(diff_id) + "/" + std::string(k_tree));
}

Result<std::optional<LayerInfo>> LayerStore::stat(const oci::Digest& diff_id) {
  if (diff_id.empty()) {
    return fail(Code::internal, "stat layer: diffID is empty");
  }
  const std::string dir = path_of(diff_id);
  MB_TRY_ASSIGN(auto st, m_fs.stat(dir));
  if (!st) {
    return std::optional<LayerInfo>();
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
  MB_TRY_ASSIGN(LayerInfo info, parse_info(text, shown));
  if (info.diff_id != diff_id) {
    return fail(Code::corrupt,
                "layer metadata " + shown + " names diffID " + info.diff_id.to_string());
  }
  return std::optional<LayerInfo>(std::move(info));
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

  // Steps (docs/store.md): mkdir temp → mkdir temp/diff → extract → write+fsync layer.json →
  // syncfs → rename temp into layers/ → fsync layers/<alg>. Until the rename the layer does
  // not exist; after it, it is whole.
  MB_TRY_ASSIGN(const std::string temp, m_temp.new_path("layer"));
  struct Cleanup {
    StoreFs& fs;
    const std::string& path;
    bool armed = true;
    ~Cleanup() {
      if (armed) {
        (void)fs.remove_tree(path); // best effort; clean_temp() catches what is left
      }
    }
  } cleanup{m_fs, temp};

  const std::string tree = temp + "/" + std::string(k_tree);
  MB_TRY_CONTEXT(m_fs.make_dir(temp), context);
  MB_TRY_CONTEXT(m_fs.make_dir(tree), context);
  MB_TRY_CONTEXT(extract(m_fs.absolute(tree)), context);

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
      // Another process unpacked the same layer first; its copy is as good as ours.
      MB_TRY_ASSIGN(auto theirs, stat(diff_id));
      if (theirs) {
        return *theirs;
      }
    }
    return fail(std::move(renamed).error().wrap(context));
  }
  cleanup.armed = false;
  MB_TRY_CONTEXT(m_fs.sync_dir(dir), context);
  return info;
}

Result<LayerInfo> LayerStore::unpack_blob(const oci::Digest& diff_id, BlobStore& blobs,
                                          const oci::Descriptor& blob,
                                          const layer::ApplyOptions& options) {
  return unpack(diff_id, blob.digest, [&](const std::string& target) -> Result<void> {
    MB_TRY_ASSIGN(auto source, blobs.get(blob.digest, static_cast<std::uint64_t>(blob.size)));
    MB_TRY_ASSIGN(layer::ApplyResult applied, layer::apply_layer(*source, target, options));
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
