// Private to the build module: the build's scratch directory in the store, and images loaded
// from the store by name (shared by the executor and `minibuild run`).
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/dockerfile/plan.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/store/store.hpp>
#include <minibuild/store/store_fs.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace minibuild::build {

// ---- the build's scratch directory --------------------------------------------------------

// A directory below <root>/tmp/ for staging trees and materialised root filesystems. It follows
// the store's session protocol (docs/store.md): `tmp/<pid>-<random>` held under an exclusive
// flock for as long as it is in use, so `clean_temp()` of another process leaves it alone while
// this build runs and removes it if the build is killed. The store's own TempArea is private to
// src/store, hence this second session.
class Scratch {
public:
  static Result<std::unique_ptr<Scratch>> create(store::StoreFs& fs) {
    std::random_device device;
    for (int attempt = 0; attempt < 8; ++attempt) {
      char suffix[32];
      std::snprintf(suffix, sizeof(suffix), "%08x%08x", device(), device());
      const std::string rel = "tmp/" + std::to_string(::getpid()) + "-" + suffix;
      MB_TRY_CONTEXT(fs.make_dir(rel), "create the build's temporary directory");
      auto lock = fs.lock(rel, store::LockMode::exclusive, store::Wait::no);
      if (!lock) {
        if (lock.error().sys_errno() == EWOULDBLOCK || lock.error().code() == Code::not_found) {
          continue;
        }
        return fail(std::move(lock).error().wrap("lock the build's temporary directory"));
      }
      // A cleaner may have removed the directory between mkdir and flock: hold a linked one.
      struct stat st {};
      if (::fstat(lock->get(), &st) != 0 || st.st_nlink == 0) {
        continue;
      }
      return std::unique_ptr<Scratch>(new Scratch(fs, rel, std::move(*lock)));
    }
    return fail(Code::io, "create a temporary directory in " + fs.absolute("tmp") +
                              ": it keeps disappearing (another process cleaning?)");
  }

  ~Scratch() { (void)m_fs.remove_tree(m_rel); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  /// A new empty directory; returns its path relative to the store root.
  Result<std::string> new_dir(std::string_view prefix) {
    const std::string rel = m_rel + "/" + std::string(prefix) + "-" + std::to_string(++m_counter);
    MB_TRY(m_fs.make_dir(rel));
    return rel;
  }
  std::string absolute(const std::string& rel) const { return m_fs.absolute(rel); }
  /// Best effort: whatever stays is removed with the scratch directory.
  void remove(const std::string& rel) { (void)m_fs.remove_tree(rel); }

private:
  Scratch(store::StoreFs& fs, std::string rel, UniqueFd lock)
      : m_fs(fs), m_rel(std::move(rel)), m_lock(std::move(lock)) {}

  store::StoreFs& m_fs;
  std::string m_rel;
  UniqueFd m_lock;
  std::uint64_t m_counter = 0;
};

struct LoadedImage {
  std::string reference;
  oci::Digest manifest_digest;
  oci::ImageManifest manifest;
  oci::ImageConfig config;
};

/// A stored blob (manifest, index or config) read whole, at most 64 MiB.
Result<std::string> read_blob(store::Store& store, const oci::Digest& digest,
                              std::string_view what);

/// The image `reference` names in the store (store_name_candidates order, or name@digest), its
/// manifest for `platform` when the name points at an index, and its config. Code::not_found
/// when the store does not have it.
Result<LoadedImage> load_image(store::Store& store, const std::string& reference,
                               const dockerfile::Platform& platform);

/// Applies stored layer blobs, bottom first, onto the empty directory `dir` (a materialised
/// root filesystem: whiteouts remove, owners that cannot be set are recorded in an xattr),
/// checking each tar against the config's diffID when `diff_ids` is parallel to `layers`.
Result<void> apply_layers(store::Store& store, const std::vector<oci::Descriptor>& layers,
                          const std::vector<oci::Digest>& diff_ids, const std::string& dir);

} // namespace minibuild::build
