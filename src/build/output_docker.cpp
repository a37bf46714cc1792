// type=docker-archive: the `docker save` format.
//
// The layout is the "legacy" one every docker load and containers/image (skopeo 1.9's
// docker-archive transport) read: manifest.json is authoritative and names the config file and
// one uncompressed tar per layer by path. Docker 25 writes layers as blobs/sha256/<diffid>
// instead; both are just paths to the readers, and the older form loads everywhere. The legacy
// per-layer `json`/`VERSION` files are only needed by Docker before 1.10 and are not written.
#include "output_file.hpp"
#include "output_image.hpp"
#include "output_tar.hpp"

#include <minibuild/build/outputs.hpp>
#include <minibuild/layer/decompress.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <set>

namespace minibuild::build {

namespace {

// Passes bytes through and, at end of stream, checks that they hash to the layer's diffID: the
// compressed blob was verified by the store's reader, this checks the decompressor's output
// against what the config promises.
class DiffIdCheckingSource : public oci::ByteSource {
public:
  DiffIdCheckingSource(oci::ByteSource& inner, oci::Digest expected)
      : m_inner(inner), m_expected(std::move(expected)), m_hasher(m_expected.algorithm()) {}

  Result<std::size_t> read(std::span<char> buffer) override {
    if (m_done) {
      return std::size_t{0};
    }
    MB_TRY_ASSIGN(std::size_t got, m_inner.read(buffer));
    if (got > 0) {
      m_hasher.update(std::string_view(buffer.data(), got));
      return got;
    }
    oci::Digest actual = m_hasher.finish();
    if (actual != m_expected) {
      return fail(Code::corrupt, "uncompressed layer has digest " + actual.to_string() +
                                     ", the config lists diffID " + m_expected.to_string());
    }
    m_done = true;
    return std::size_t{0};
  }

private:
  oci::ByteSource& m_inner;
  oci::Digest m_expected;
  oci::Hasher m_hasher;
  bool m_done = false;
};

// The uncompressed layer, checked at both ends (blob digest, diffID). `consume` gets the
// checked source; after it has read to the end, the compressed stream must be fully verified
// too (trailing bytes after the last compressed frame would otherwise go unnoticed).
template <typename Consume>
Result<std::uint64_t> with_layer(store::BlobStore& blobs, const oci::Descriptor& layer,
                                 const oci::Digest& diff_id, Consume&& consume) {
  MB_TRY_ASSIGN(auto blob, blobs.get(layer.digest, static_cast<std::uint64_t>(layer.size)));
  layer::DecompressingSource uncompressed(*blob);
  DiffIdCheckingSource checked(uncompressed, diff_id);
  MB_TRY_ASSIGN(std::uint64_t size, consume(checked));
  if (!blob->verified()) {
    char extra = 0;
    MB_TRY_ASSIGN(std::size_t got, blob->read(std::span<char>(&extra, 1)));
    if (got != 0) {
      return fail(Code::corrupt, "data after the end of the compressed layer");
    }
  }
  return size;
}

// Picks the one manifest to export from a name that points at an index.
Result<StoredDocument> single_manifest(store::BlobStore& blobs, StoredDocument top) {
  if (oci::is_manifest(top.descriptor.media_type)) {
    return top;
  }
  MB_TRY_ASSIGN(auto index, oci::parse<oci::ImageIndex>(top.bytes));
  std::vector<oci::Descriptor> stored;
  for (const auto& child : index.manifests) {
    if (!oci::is_manifest(child.media_type)) {
      continue;
    }
    MB_TRY_ASSIGN(auto info, blobs.stat(child.digest));
    if (info) {
      stored.push_back(child);
    }
  }
  if (stored.size() != 1) {
    return fail(Code::unsupported,
                "index " + top.descriptor.digest.to_string() + " has " +
                    std::to_string(stored.size()) +
                    " manifests in the store; a docker archive holds exactly one image");
  }
  return read_top_document(blobs, stored.front().digest, stored.front().media_type);
}

} // namespace

Result<void> write_docker_archive(store::BlobStore& blobs, const ImageToExport& image,
                                  const std::string& file, const OutputOptions& options) {
  MB_TRY_ASSIGN(auto top, read_top_document(blobs, image.digest, image.media_type));
  MB_TRY_ASSIGN(auto document, single_manifest(blobs, std::move(top)));
  MB_TRY_ASSIGN(auto manifest, oci::parse<oci::ImageManifest>(document.bytes));
  MB_TRY_ASSIGN(std::string config_bytes, blobs.read(manifest.config.digest, k_max_document_bytes));
  auto config = oci::parse<oci::ImageConfig>(config_bytes);
  if (!config) {
    return fail(std::move(config).error().wrap("config " + manifest.config.digest.to_string()));
  }
  const auto& diff_ids = config->rootfs.diff_ids;
  if (diff_ids.size() != manifest.layers.size()) {
    return fail(Code::corrupt, "manifest " + document.descriptor.digest.to_string() + " has " +
                                   std::to_string(manifest.layers.size()) +
                                   " layers but its config lists " +
                                   std::to_string(diff_ids.size()) + " diffIDs");
  }
  std::vector<std::string> repo_tags;
  nlohmann::json repositories = nlohmann::json::object();
  for (const auto& name : image.names) {
    MB_TRY_ASSIGN(std::string tag, tag_of(name));
    std::string familiar = familiar_name(name);
    repo_tags.push_back(familiar);
    if (!diff_ids.empty()) {
      std::string repository = familiar.substr(0, familiar.size() - tag.size() - 1);
      repositories[repository][tag] = diff_ids.back().hex();
    }
  }

  MB_TRY_ASSIGN(auto destination, ArchiveDestination::open(file));
  TarWriter tar(destination.fd(), destination.display(), options.archive_mtime,
                destination.seekable());
  const std::string config_name = manifest.config.digest.hex() + ".json";
  MB_TRY(tar.add_file(config_name, config_bytes));
  nlohmann::json layer_paths = nlohmann::json::array();
  std::set<oci::Digest> written;
  for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
    const oci::Descriptor& layer = manifest.layers[i];
    const oci::Digest& diff_id = diff_ids[i];
    const std::string directory = diff_id.hex() + "/";
    layer_paths.push_back(directory + "layer.tar");
    if (!written.insert(diff_id).second) {
      continue; // the same content twice: one copy, listed twice
    }
    const std::string context = "layer " + std::to_string(i + 1) + " (" + layer.digest.to_string() +
                                ", diffID " + diff_id.to_string() + ")";
    std::optional<std::uint64_t> size;
    if (!destination.seekable()) {
      // A stream cannot be patched: learn the size with a first, discarded pass.
      auto measured =
          with_layer(blobs, layer, diff_id, [](oci::ByteSource& source) -> Result<std::uint64_t> {
            std::vector<char> buffer(1 << 20);
            std::uint64_t total = 0;
            while (true) {
              MB_TRY_ASSIGN(std::size_t got, source.read(buffer));
              if (got == 0) {
                return total;
              }
              total += got;
            }
          });
      if (!measured) {
        return fail(std::move(measured).error().wrap(context));
      }
      size = *measured;
    }
    MB_TRY(tar.add_directory(directory));
    auto added = with_layer(blobs, layer, diff_id, [&](oci::ByteSource& source) {
      return tar.add_stream(directory + "layer.tar", source, size);
    });
    if (!added) {
      return fail(std::move(added).error().wrap(context));
    }
  }
  nlohmann::json entry = {
      {"Config", config_name}, {"RepoTags", repo_tags}, {"Layers", std::move(layer_paths)}};
  MB_TRY(tar.add_file("manifest.json", nlohmann::json::array({std::move(entry)}).dump()));
  if (!repositories.empty()) {
    MB_TRY(tar.add_file("repositories", repositories.dump()));
  }
  MB_TRY(tar.finish());
  return destination.commit();
}

} // namespace minibuild::build
