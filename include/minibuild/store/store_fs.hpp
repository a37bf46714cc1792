// The narrow filesystem interface under the store (STYLE.md habit 3).
//
// Every path is relative to the store root ("blobs/sha256/ab…"); an implementation resolves it
// against a directory descriptor it holds, so the store never builds absolute paths for its own
// I/O. The operations are split into reads and *write steps*: a write step is one call that
// changes what is on disk (create, write, fsync, rename, unlink, mkdir). Store logic is written
// as a sequence of write steps whose every prefix leaves the store consistent, and the tests
// prove it with FaultInjectingFs (tests/store/fault_injecting_fs.hpp), which fails or "crashes"
// at the Nth step. docs/store.md lists the step sequence of each operation.
//
// Errors name the syscall and the absolute path: `rename "/root/tmp/x" to "/root/blobs/…": …`.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {

/// How a flock(2) lock is taken.
enum class LockMode { shared, exclusive };
/// Whether taking a lock may block until the holder lets go.
enum class Wait { no, yes };

/// The kind of a directory entry, as far as the store cares.
enum class EntryType { file, directory, symlink, other };

struct FsEntry {
  std::string name;
  EntryType type = EntryType::other;

  bool operator==(const FsEntry&) const = default;
};

struct FsStat {
  EntryType type = EntryType::other;
  std::uint64_t size = 0;
};

/// The store's view of its root directory. Implementations are not thread-safe; one Store (and
/// so one StoreFs) per thread. Several processes may use the same root at once: coordination is
/// by lock(), as docs/store.md describes.
class StoreFs {
public:
  virtual ~StoreFs() = default;

  /// The absolute path of `rel`, for code that must hand a directory to something outside the
  /// store (an extractor writing an unpacked layer, an overlay mount, a message).
  virtual std::string absolute(std::string_view rel) const = 0;

  // ---- reads (never fail on purpose in fault injection before a crash) ----

  /// Opens a regular file for reading (O_RDONLY|O_CLOEXEC|O_NOFOLLOW). A missing file gives
  /// Code::not_found.
  virtual Result<UniqueFd> open_read(std::string_view rel) = 0;
  /// lstat(2); nullopt when nothing is there.
  virtual Result<std::optional<FsStat>> stat(std::string_view rel) = 0;
  /// The entries of a directory except "." and "..", in no particular order. A missing
  /// directory gives an empty list.
  virtual Result<std::vector<FsEntry>> list(std::string_view rel) = 0;
  /// Opens an existing file or directory and takes a flock(2) lock on it. The lock lives as long
  /// as the returned descriptor (closing it, or the process dying, releases it). With Wait::no a
  /// held conflicting lock gives Code::io with sys_errno() == EWOULDBLOCK.
  virtual Result<UniqueFd> lock(std::string_view rel, LockMode mode, Wait wait) = 0;

  // ---- write steps ----

  /// mkdir(2) with mode 0755; an existing directory is success (so concurrent first opens
  /// agree).
  virtual Result<void> make_dir(std::string_view rel) = 0;
  /// Creates a new regular file (O_CREAT|O_EXCL, mode 0644) open for writing. Fails when
  /// anything exists at `rel`.
  virtual Result<UniqueFd> create_file(std::string_view rel) = 0;
  /// Writes all of `bytes` to `fd` (retrying short writes and EINTR).
  virtual Result<void> write(int fd, std::span<const char> bytes) = 0;
  /// fsync(2) of a file this StoreFs created.
  virtual Result<void> sync_file(int fd) = 0;
  /// fsync(2) of a directory, which makes renames and creations inside it durable.
  virtual Result<void> sync_dir(std::string_view rel) = 0;
  /// syncfs(2) of the filesystem that holds the store: flushes a whole extracted tree at once.
  virtual Result<void> sync_fs() = 0;
  /// rename(2). Replaces an existing file, and an existing *empty* directory; a non-empty target
  /// directory fails with sys_errno() ENOTEMPTY or EEXIST (callers treat that as "someone else
  /// already put it there").
  virtual Result<void> rename(std::string_view from, std::string_view to) = 0;
  /// unlink(2); a missing file is success (removal is idempotent).
  virtual Result<void> remove_file(std::string_view rel) = 0;
  /// Removes a directory tree (or a single file) without following symlinks, making read-only
  /// directories writable as needed; a missing path is success. Not atomic: callers that need
  /// "complete or absent" first rename the tree into the temp area.
  virtual Result<void> remove_tree(std::string_view rel) = 0;
};

/// The real filesystem. Holds an O_DIRECTORY descriptor of the root; every operation is an
/// *at() call on it.
class RealStoreFs : public StoreFs {
public:
  /// Opens `root`, creating it and its missing parents (mode 0700 for the root itself, as it
  /// may hold private images) when `create` is yes.
  enum class Create { no, yes };
  static Result<std::unique_ptr<RealStoreFs>> open(const std::string& root, Create create);

  std::string absolute(std::string_view rel) const override;
  Result<UniqueFd> open_read(std::string_view rel) override;
  Result<std::optional<FsStat>> stat(std::string_view rel) override;
  Result<std::vector<FsEntry>> list(std::string_view rel) override;
  Result<UniqueFd> lock(std::string_view rel, LockMode mode, Wait wait) override;
  Result<void> make_dir(std::string_view rel) override;
  Result<UniqueFd> create_file(std::string_view rel) override;
  Result<void> write(int fd, std::span<const char> bytes) override;
  Result<void> sync_file(int fd) override;
  Result<void> sync_dir(std::string_view rel) override;
  Result<void> sync_fs() override;
  Result<void> rename(std::string_view from, std::string_view to) override;
  Result<void> remove_file(std::string_view rel) override;
  Result<void> remove_tree(std::string_view rel) override;

private:
  RealStoreFs(std::string root, UniqueFd root_fd)
      : m_root(std::move(root)), m_root_fd(std::move(root_fd)) {}

  std::string m_root;
  UniqueFd m_root_fd;
};

} // namespace minibuild::store
