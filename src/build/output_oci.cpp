// type=oci (a layout directory) and type=oci-archive (the same layout as a tar).
#include "output_file.hpp"
#include "output_image.hpp"
#include "output_tar.hpp"

#include <minibuild/build/outputs.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace minibuild::build {

namespace {

constexpr std::string_view k_layout_file = "oci-layout";
constexpr std::string_view k_index_file = "index.json";
constexpr std::string_view k_layout_version = "1.0.0";

std::string layout_file_content() {
  return R"({"imageLayoutVersion":")" + std::string(k_layout_version) + R"("})";
}

// The index.json entries for an image: one per distinct tag (a later name with the same tag
// wins, as a later `skopeo copy` to the same tag would), or one unnamed entry.
Result<std::vector<oci::Descriptor>> index_entries(const ImageToExport& image,
                                                   const oci::Descriptor& top) {
  std::vector<oci::Descriptor> entries;
  for (const auto& name : image.names) {
    MB_TRY_ASSIGN(std::string tag, tag_of(name));
    std::erase_if(entries, [&](const oci::Descriptor& entry) {
      auto ref = entry.annotations.find(std::string(k_ref_name_annotation));
      return ref != entry.annotations.end() && ref->second == tag;
    });
    oci::Descriptor entry = top;
    entry.annotations[std::string(k_image_name_annotation)] = name;
    entry.annotations[std::string(k_ref_name_annotation)] = tag;
    entries.push_back(std::move(entry));
  }
  if (image.names.empty()) {
    entries.push_back(top);
  }
  return entries;
}

// Merges `entries` into an existing index: entries with one of their ref names are replaced,
// the others keep their place; an unnamed entry is added only if the same unnamed entry is not
// already there.
void merge_entries(oci::ImageIndex& index, const std::vector<oci::Descriptor>& entries) {
  const std::string ref_key(k_ref_name_annotation);
  for (const auto& entry : entries) {
    auto ref = entry.annotations.find(ref_key);
    if (ref == entry.annotations.end()) {
      bool present = std::any_of(
          index.manifests.begin(), index.manifests.end(), [&](const oci::Descriptor& existing) {
            return existing.digest == entry.digest && !existing.annotations.contains(ref_key);
          });
      if (!present) {
        index.manifests.push_back(entry);
      }
      continue;
    }
    std::erase_if(index.manifests, [&](const oci::Descriptor& existing) {
      auto existing_ref = existing.annotations.find(ref_key);
      return existing_ref != existing.annotations.end() && existing_ref->second == ref->second;
    });
    index.manifests.push_back(entry);
  }
}

// Reads a small file of the layout; nullopt when it does not exist.
Result<std::optional<std::string>> read_layout_file(int dir_fd, std::string_view name,
                                                    const std::string& display) {
  int fd = ::openat(dir_fd, std::string(name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::optional<std::string>();
    }
    return fail_errno(errno, "open \"" + display + "\"");
  }
  UniqueFd file(fd);
  std::string content;
  char buffer[65536];
  while (true) {
    ssize_t got = ::read(file.get(), buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "read \"" + display + "\"");
    }
    if (got == 0) {
      return std::optional<std::string>(std::move(content));
    }
    content.append(buffer, static_cast<std::size_t>(got));
    if (content.size() > k_max_document_bytes) {
      return fail(Code::corrupt, "\"" + display + "\" is larger than " +
                                     std::to_string(k_max_document_bytes) + " bytes");
    }
  }
}

Result<void> check_layout_version(const std::string& text, const std::string& display) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("imageLayoutVersion") ||
      !json["imageLayoutVersion"].is_string()) {
    return fail(Code::corrupt, "\"" + display + "\" is not an OCI layout file");
  }
  std::string version = json["imageLayoutVersion"].get<std::string>();
  if (version != k_layout_version) {
    return fail(Code::unsupported, "\"" + display + "\": image layout version \"" + version +
                                       "\" (minibuild writes " + std::string(k_layout_version) +
                                       ")");
  }
  return {};
}

// True when the directory holds nothing but leftovers of our own temporary files.
Result<bool> is_empty_directory(const std::string& dir) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(".minibuild-", 0) != 0) {
      return false;
    }
  }
  if (error) {
    return fail(Error::from_errno(error.value(), "list \"" + dir + "\""));
  }
  return true;
}

Result<void> make_dir_at(int dir_fd, const std::string& name, const std::string& display) {
  if (::mkdirat(dir_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
    return fail_errno(errno, "mkdir \"" + display + "\"");
  }
  return {};
}

// Copies one blob from the store into blobs/sha256 unless a file of the right size is there
// (content addressing: the name is the content; a wrong size is a damaged copy to replace).
Result<void> copy_blob(store::BlobStore& blobs, const store::BlobInfo& blob, int root_fd,
                       const std::string& root, int sha_fd, const std::string& sha_dir) {
  struct stat info {};
  if (::fstatat(sha_fd, blob.digest.hex().c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(info.st_mode) && static_cast<std::uint64_t>(info.st_size) == blob.size) {
    return {};
  }
  MB_TRY_ASSIGN(auto source, blobs.get(blob.digest, blob.size));
  MB_TRY_ASSIGN(auto file, AtomicFile::create(root_fd, root));
  std::vector<char> buffer(1 << 20);
  while (true) {
    MB_TRY_ASSIGN(std::size_t got, source->read(buffer));
    if (got == 0) {
      break;
    }
    MB_TRY(file.write(std::string_view(buffer.data(), got)));
  }
  // read() returned 0: the verifying reader has checked size and digest.
  return file.commit(sha_fd, sha_dir, blob.digest.hex());
}

Result<void> write_layout(store::BlobStore& blobs, const ImageToExport& image,
                          const std::string& dir) {
  MB_TRY_ASSIGN(auto top, read_top_document(blobs, image.digest, image.media_type));
  MB_TRY_ASSIGN(auto entries, index_entries(image, top.descriptor));
  MB_TRY_ASSIGN(auto needed, collect_blobs(blobs, top));

  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return fail(Error::from_errno(error.value(), "create directory \"" + dir + "\""));
  }
  MB_TRY_ASSIGN(UniqueFd root_fd, open_directory(AT_FDCWD, dir, dir));
  const std::string layout_path = dir + "/" + std::string(k_layout_file);
  MB_TRY_ASSIGN(auto layout_text, read_layout_file(root_fd.get(), k_layout_file, layout_path));
  if (layout_text) {
    MB_TRY(check_layout_version(*layout_text, layout_path));
  } else {
    MB_TRY_ASSIGN(bool empty, is_empty_directory(dir));
    if (!empty) {
      return fail(Code::usage, "\"" + dir +
                                   "\" is neither empty nor an OCI layout (it has no oci-layout "
                                   "file); refusing to write into it");
    }
  }

  const std::string blobs_dir = dir + "/blobs";
  const std::string sha_dir = blobs_dir + "/sha256";
  MB_TRY(make_dir_at(root_fd.get(), "blobs", blobs_dir));
  MB_TRY(make_dir_at(root_fd.get(), "blobs/sha256", sha_dir));
  MB_TRY_ASSIGN(UniqueFd sha_fd, open_directory(root_fd.get(), "blobs/sha256", sha_dir));
  for (const auto& blob : needed) {
    if (blob.digest.algorithm() != oci::DigestAlgorithm::sha256) {
      MB_TRY(make_dir_at(root_fd.get(), "blobs/sha512", blobs_dir + "/sha512"));
      MB_TRY_ASSIGN(UniqueFd other_fd,
                    open_directory(root_fd.get(), "blobs/sha512", blobs_dir + "/sha512"));
      MB_TRY_CONTEXT(
          copy_blob(blobs, blob, root_fd.get(), dir, other_fd.get(), blobs_dir + "/sha512"),
          "copy blob " + blob.digest.to_string());
      continue;
    }
    MB_TRY_CONTEXT(copy_blob(blobs, blob, root_fd.get(), dir, sha_fd.get(), sha_dir),
                   "copy blob " + blob.digest.to_string());
  }

  // The layout file before the index, the index last: a reader sees the new entries only when
  // everything they reference is in place.
  if (!layout_text) {
    MB_TRY_ASSIGN(auto layout_file, AtomicFile::create(root_fd.get(), dir));
    MB_TRY(layout_file.write(layout_file_content()));
    MB_TRY(layout_file.commit(root_fd.get(), dir, std::string(k_layout_file)));
  }
  const std::string index_path = dir + "/" + std::string(k_index_file);
  MB_TRY_ASSIGN(auto index_text, read_layout_file(root_fd.get(), k_index_file, index_path));
  oci::ImageIndex index;
  index.media_type = std::string(oci::k_oci_index);
  if (index_text) {
    auto parsed = oci::parse<oci::ImageIndex>(*index_text);
    if (!parsed) {
      return fail(std::move(parsed).error().wrap("read \"" + index_path + "\""));
    }
    index = std::move(*parsed);
  }
  merge_entries(index, entries);
  MB_TRY_ASSIGN(auto index_file, AtomicFile::create(root_fd.get(), dir));
  MB_TRY(index_file.write(oci::serialize(index)));
  return index_file.commit(root_fd.get(), dir, std::string(k_index_file));
}

} // namespace

Result<void> write_oci_layout(store::BlobStore& blobs, const ImageToExport& image,
                              const std::string& dir) {
  return write_layout(blobs, image, dir);
}

Result<void> write_oci_archive(store::BlobStore& blobs, const ImageToExport& image,
                               const std::string& file, const OutputOptions& options) {
  MB_TRY_ASSIGN(auto top, read_top_document(blobs, image.digest, image.media_type));
  MB_TRY_ASSIGN(auto entries, index_entries(image, top.descriptor));
  MB_TRY_ASSIGN(auto needed, collect_blobs(blobs, top));
  std::sort(needed.begin(), needed.end(),
            [](const store::BlobInfo& a, const store::BlobInfo& b) { return a.digest < b.digest; });
  oci::ImageIndex index;
  index.media_type = std::string(oci::k_oci_index);
  index.manifests = std::move(entries);

  MB_TRY_ASSIGN(auto destination, ArchiveDestination::open(file));
  TarWriter tar(destination.fd(), destination.display(), options.archive_mtime,
                destination.seekable());
  MB_TRY(tar.add_directory("blobs/"));
  std::string last_algorithm;
  for (const auto& blob : needed) {
    std::string algorithm(oci::algorithm_name(blob.digest.algorithm()));
    if (algorithm != last_algorithm) {
      MB_TRY(tar.add_directory("blobs/" + algorithm + "/"));
      last_algorithm = algorithm;
    }
    MB_TRY_ASSIGN(auto source, blobs.get(blob.digest, blob.size));
    auto added = tar.add_stream("blobs/" + algorithm + "/" + blob.digest.hex(), *source, blob.size);
    if (!added) {
      return fail(std::move(added).error().wrap("copy blob " + blob.digest.to_string()));
    }
  }
  MB_TRY(tar.add_file(k_index_file, oci::serialize(index)));
  MB_TRY(tar.add_file(k_layout_file, layout_file_content()));
  MB_TRY(tar.finish());
  return destination.commit();
}

} // namespace minibuild::build
