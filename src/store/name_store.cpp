#include "fd_source.hpp"
#include "temp_area.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/blob_store.hpp>
#include <minibuild/store/name_store.hpp>

#include <nlohmann/json.hpp>

#include <map>

namespace minibuild::store {

namespace {

// Plenty for tens of thousands of names; a larger file is damage, not data.
constexpr std::size_t k_max_names_file = 64 * 1024 * 1024;

using NameMap = std::map<std::string, NamedImage>;

Result<NameMap> parse_names(std::string_view text, const std::string& shown) {
  const auto corrupt = [&](const std::string& why) {
    return fail(Code::corrupt, "names file " + shown + ": " + why);
  };
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return corrupt("not a JSON object");
  }
  NameMap names;
  try {
    const int version = json.at("version").get<int>();
    if (version > NameStore::k_version) {
      return fail(Code::unsupported, "names file " + shown + " has version " +
                                         std::to_string(version) + "; this minibuild reads up to " +
                                         std::to_string(NameStore::k_version));
    }
    for (const auto& [name, entry] : json.at("names").items()) {
      NamedImage image;
      image.name = name;
      auto digest = oci::Digest::parse(entry.at("digest").get<std::string>());
      if (!digest) {
        return corrupt("name \"" + name + "\": " + digest.error().message());
      }
      image.digest = std::move(*digest);
      image.media_type = entry.at("mediaType").get<std::string>();
      names.emplace(name, std::move(image));
    }
  } catch (const nlohmann::json::exception& error) {
    return corrupt(error.what());
  }
  return names;
}

std::string serialize_names(const NameMap& names) {
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& [name, image] : names) {
    entries[name] = {{"digest", image.digest.to_string()}, {"mediaType", image.media_type}};
  }
  nlohmann::json json = {{"version", NameStore::k_version}, {"names", std::move(entries)}};
  return json.dump(1) + "\n";
}

Result<NameMap> read_names(StoreFs& fs) {
  const std::string shown = "\"" + fs.absolute(NameStore::k_file) + "\"";
  auto fd = fs.open_read(NameStore::k_file);
  if (!fd) {
    if (fd.error().code() == Code::not_found) {
      return NameMap{};
    }
    return fail(std::move(fd).error());
  }
  FdSource source(std::move(*fd), shown);
  MB_TRY_ASSIGN(std::string text, oci::read_all(source, k_max_names_file));
  return parse_names(text, shown);
}

// The replace steps (docs/store.md): create temp → write → fsync → rename over names.json →
// fsync the root. Every prefix leaves the old or the new file in place.
Result<void> write_names(StoreFs& fs, TempArea& temp, const NameMap& names) {
  const std::string text = serialize_names(names);
  MB_TRY_ASSIGN(const std::string path, temp.new_path("names"));
  {
    MB_TRY_ASSIGN(UniqueFd fd, fs.create_file(path));
    auto written = [&]() -> Result<void> {
      MB_TRY(fs.write(fd.get(), std::span<const char>(text.data(), text.size())));
      MB_TRY(fs.sync_file(fd.get()));
      return {};
    }();
    if (!written) {
      fd.reset();
      (void)fs.remove_file(path); // best effort; clean_temp() catches what is left
      return written;
    }
  }
  MB_TRY(fs.rename(path, NameStore::k_file));
  MB_TRY(fs.sync_dir(""));
  return {};
}

bool is_forbidden(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte <= 0x20 || byte == 0x7f;
}

} // namespace

Result<std::pair<std::string, std::string>> split_name(std::string_view name) {
  const auto bad = [&](const std::string& why) {
    return fail(Code::usage, "image name \"" + std::string(name) + "\": " + why);
  };
  for (const char c : name) {
    if (is_forbidden(c)) {
      return bad("contains whitespace or a control character");
    }
  }
  const std::size_t slash = name.rfind('/');
  const std::size_t colon = name.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) {
    return bad("has no tag (expected repository:tag)");
  }
  std::string repository(name.substr(0, colon));
  std::string tag(name.substr(colon + 1));
  if (repository.empty()) {
    return bad("repository is empty");
  }
  if (tag.empty()) {
    return bad("tag is empty");
  }
  return std::make_pair(std::move(repository), std::move(tag));
}

Result<void> NameStore::tag(std::string_view name, const oci::Digest& digest,
                            std::string_view media_type) {
  const std::string context = "tag " + std::string(name);
  MB_TRY_CONTEXT(split_name(name), context);
  if (!oci::is_manifest(media_type) && !oci::is_index(media_type)) {
    return fail(Error(Code::unsupported,
                      "media type \"" + std::string(media_type) + "\" is not a manifest or index")
                    .wrap(context));
  }
  MB_TRY_ASSIGN(auto blob, m_blobs.stat(digest));
  if (!blob) {
    return fail(Error(Code::not_found, "blob " + digest.to_string() + " is not in the store")
                    .wrap(context));
  }
  MB_TRY_ASSIGN(UniqueFd lock, m_fs.lock(k_lock, LockMode::exclusive, Wait::yes));
  MB_TRY_ASSIGN(NameMap names, read_names(m_fs));
  names[std::string(name)] = NamedImage{std::string(name), digest, std::string(media_type)};
  MB_TRY_CONTEXT(write_names(m_fs, m_temp, names), context);
  return {};
}

Result<bool> NameStore::untag(std::string_view name) {
  MB_TRY_ASSIGN(UniqueFd lock, m_fs.lock(k_lock, LockMode::exclusive, Wait::yes));
  MB_TRY_ASSIGN(NameMap names, read_names(m_fs));
  if (names.erase(std::string(name)) == 0) {
    return false;
  }
  MB_TRY_CONTEXT(write_names(m_fs, m_temp, names), "untag " + std::string(name));
  return true;
}

Result<std::optional<NamedImage>> NameStore::resolve(std::string_view name) {
  MB_TRY_ASSIGN(NameMap names, read_names(m_fs));
  const auto found = names.find(std::string(name));
  if (found == names.end()) {
    return std::optional<NamedImage>();
  }
  return std::optional<NamedImage>(found->second);
}

Result<std::vector<NamedImage>> NameStore::list() {
  MB_TRY_ASSIGN(NameMap names, read_names(m_fs));
  std::vector<NamedImage> images;
  images.reserve(names.size());
  for (auto& [name, image] : names) {
    images.push_back(std::move(image));
  }
  return images;
}

} // namespace minibuild::store
