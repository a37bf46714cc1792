// The local store: one directory (the "root", chosen by the CLI: --root, MINIBUILD_ROOT or the
// per-user default) holding blobs, unpacked layers and image names. docs/store.md describes the
// layout, the crash-safety argument and the locking protocol; in short:
//
//   <root>/minibuild-store        signature + format version (created on first open)
//   <root>/lock                   the store lock: shared for build/pull/tag, exclusive for prune
//   <root>/names.json, names.lock image names, replaced atomically under names.lock
//   <root>/blobs/sha256/<hex>     blobs (BlobStore)
//   <root>/layers/sha256/<hex>/   unpacked layers by diffID (LayerStore)
//   <root>/tmp/<session>/         per-process temporary files, flock'ed by their owner
//   <root>/cache/entries/sha256/  build cache entries (BuildCache), created on first put
//
// Every write is "complete or absent": content is written under tmp/, fsync'ed, renamed into
// place and the directory fsync'ed. A process killed at any point leaves at most stale
// temporary files, which the next exclusive operation (prune, fsck --repair) removes.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/store/blob_store.hpp>
#include <minibuild/store/build_cache.hpp>
#include <minibuild/store/layer_store.hpp>
#include <minibuild/store/name_store.hpp>
#include <minibuild/store/store_fs.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace minibuild::store {

class TempArea;
class LocalBlobStore;

/// Name of the format file at the store root, and the signature on its first line.
inline constexpr std::string_view k_format_file = "minibuild-store";
inline constexpr std::string_view k_format_signature = "minibuild-store";
/// The format this minibuild writes. Bump it for any change older versions would misread, and
/// add a migration from the previous version (src/store/format_file.cpp).
inline constexpr int k_format_version = 1;
/// The oldest format this minibuild can open (migrating it to k_format_version).
inline constexpr int k_oldest_supported_format_version = 1;

/// A held store lock (flock on <root>/lock). Released when destroyed or moved from.
class StoreLock {
public:
  StoreLock() = default;
  StoreLock(UniqueFd fd, LockMode mode) : m_fd(std::move(fd)), m_mode(mode) {}

  bool held() const { return static_cast<bool>(m_fd); }
  LockMode mode() const { return m_mode; }
  void release() { m_fd.reset(); }

private:
  UniqueFd m_fd;
  LockMode m_mode = LockMode::shared;
};

/// An open store. Owns its StoreFs and this process's temporary area. Not thread-safe, with one
/// exception that parallel pulls rely on: on the real filesystem, blobs().open_writer / stat /
/// get (each writer or reader then used by one thread) and layers().unpack / unpack_blob / stat
/// may be called from several threads at once, because they share only the temporary area
/// (whose new_path() is locked) and make every entry visible with an atomic rename. Everything
/// else (names, gc, fsck, lock) belongs to one thread. Two Store objects in one process exclude
/// each other exactly like two processes do (flock locks belong to the open file).
class Store {
public:
  /// Opens the store behind `fs`: checks the format file (refusing, with Code::unsupported, a
  /// format newer than k_format_version or older than k_oldest_supported_format_version), or,
  /// when the root is empty, creates the layout. A non-empty directory without a format file is
  /// refused (Code::usage) so a mistyped --root never scatters files into, say, $HOME.
  static Result<std::unique_ptr<Store>> open(std::unique_ptr<StoreFs> fs);
  /// Opens (creating if needed) the store at `root` on the real filesystem.
  static Result<std::unique_ptr<Store>> open(const std::string& root);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Takes the store lock. Commands that write blobs, layers or names (build, pull, tag, rmi)
  /// hold it shared for their whole run, so prune never removes a blob they wrote but have not
  /// named yet; prune and fsck --repair take it exclusive. With Wait::no a conflicting holder
  /// gives Code::io with errno EWOULDBLOCK and a message saying the store is busy. Never ask for
  /// an exclusive lock while holding a shared one (flock upgrades are not atomic).
  Result<StoreLock> lock(LockMode mode, Wait wait);

  /// Removes temporary files and directories left by processes that are gone (their session
  /// directory is no longer flock'ed). Safe to call at any time; prune and fsck call it.
  /// Returns how many entries were removed.
  Result<std::size_t> clean_temp();

  StoreFs& fs() { return *m_fs; }
  BlobStore& blobs();
  LayerStore& layers() { return *m_layers; }
  NameStore& names() { return *m_names; }
  /// The build cache (build_cache.hpp): cache key → a step's layer and history entry.
  BuildCache& cache() { return *m_cache; }
  /// The format version found on disk when the store was opened (after migration: current).
  int format_version() const { return m_format_version; }
  /// Absolute path of the root, for messages.
  std::string root() const { return m_fs->absolute(""); }

private:
  explicit Store(std::unique_ptr<StoreFs> fs);

  std::unique_ptr<StoreFs> m_fs;
  std::unique_ptr<TempArea> m_temp;
  std::unique_ptr<LocalBlobStore> m_blobs;
  std::unique_ptr<LayerStore> m_layers;
  std::unique_ptr<NameStore> m_names;
  std::unique_ptr<BuildCache> m_cache;
  int m_format_version = k_format_version;
};

} // namespace minibuild::store
