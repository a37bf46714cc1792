#include "fd_source.hpp"
#include "local_blob_store.hpp"
#include "temp_area.hpp"

#include <minibuild/store/store.hpp>

#include <cerrno>
#include <charconv>

namespace minibuild::store {

namespace {

constexpr std::string_view k_lock_file = "lock";
constexpr std::size_t k_max_format_file = 4096;

// What may already sit in a root that has no format file yet: our own temporary directory from
// a first open that was interrupted, and what mkfs puts at the top of a dedicated filesystem.
bool allowed_before_format(std::string_view name) {
  return name == TempArea::k_dir || name == "lost+found";
}

std::string format_text(int version) {
  return std::string(k_format_signature) + "\nversion " + std::to_string(version) + "\n";
}

// "minibuild-store\nversion N\n" → N. Anything else is not our store (Code::usage: the user
// pointed --root at something else) or damage.
Result<int> parse_format(std::string_view text, const std::string& shown) {
  const std::size_t first_end = text.find('\n');
  if (text.substr(0, first_end) != k_format_signature) {
    return fail(Code::usage, shown + " does not start with \"" + std::string(k_format_signature) +
                                 "\": this is not a minibuild store");
  }
  std::string_view rest =
      first_end == std::string_view::npos ? std::string_view() : text.substr(first_end + 1);
  constexpr std::string_view k_prefix = "version ";
  if (rest.substr(0, k_prefix.size()) != k_prefix) {
    return fail(Code::corrupt, shown + ": second line is not \"version N\"");
  }
  rest.remove_prefix(k_prefix.size());
  rest = rest.substr(0, rest.find('\n'));
  int version = 0;
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), version);
  if (error != std::errc() || end != rest.data() + rest.size() || version <= 0) {
    return fail(Code::corrupt, shown + ": bad version \"" + std::string(rest) + "\"");
  }
  return version;
}

// The steps of creating the format file: create temp → write → fsync → rename → fsync root.
// Two processes creating a store at once both rename identical content into place.
Result<void> write_format(StoreFs& fs, TempArea& temp, int version) {
  const std::string text = format_text(version);
  MB_TRY_ASSIGN(const std::string path, temp.new_path("format"));
  {
    MB_TRY_ASSIGN(UniqueFd fd, fs.create_file(path));
    MB_TRY(fs.write(fd.get(), std::span<const char>(text.data(), text.size())));
    MB_TRY(fs.sync_file(fd.get()));
  }
  MB_TRY(fs.rename(path, k_format_file));
  MB_TRY(fs.sync_dir(""));
  return {};
}

Result<void> ensure_dir(StoreFs& fs, std::string_view rel) {
  MB_TRY_ASSIGN(auto st, fs.stat(rel));
  if (!st) {
    MB_TRY(fs.make_dir(rel));
  } else if (st->type != EntryType::directory) {
    return fail(Code::corrupt, "\"" + fs.absolute(rel) + "\" is not a directory");
  }
  return {};
}

Result<void> ensure_file(StoreFs& fs, std::string_view rel) {
  MB_TRY_ASSIGN(auto st, fs.stat(rel));
  if (st) {
    return {};
  }
  auto created = fs.create_file(rel);
  if (!created && created.error().sys_errno() != EEXIST) {
    return fail(std::move(created).error());
  }
  return {};
}

// The layout every version-1 store has. Checked (and completed) on every open, so a first open
// that was interrupted after writing the format file is finished by the next one.
Result<void> ensure_layout(StoreFs& fs) {
  MB_TRY(ensure_dir(fs, "blobs"));
  MB_TRY(ensure_dir(fs, LocalBlobStore::dir_of(oci::DigestAlgorithm::sha256)));
  MB_TRY(ensure_dir(fs, "layers"));
  MB_TRY(ensure_dir(fs, "layers/sha256"));
  MB_TRY(ensure_file(fs, k_lock_file));
  MB_TRY(ensure_file(fs, NameStore::k_lock));
  return {};
}

// Upgrades an older supported format in place, one version at a time, then records the new
// version. There is only version 1 so far; a future version adds its step here.
Result<void> migrate(StoreFs& fs, TempArea& temp, int from) {
  for (int version = from; version < k_format_version; ++version) {
    return fail(Code::internal, "no migration from store format " + std::to_string(version));
  }
  return write_format(fs, temp, k_format_version);
}

Result<std::optional<int>> read_format(StoreFs& fs) {
  const std::string shown = "\"" + fs.absolute(k_format_file) + "\"";
  auto fd = fs.open_read(k_format_file);
  if (!fd) {
    if (fd.error().code() == Code::not_found) {
      return std::optional<int>();
    }
    return fail(std::move(fd).error());
  }
  FdSource source(std::move(*fd), shown);
  MB_TRY_ASSIGN(std::string text, oci::read_all(source, k_max_format_file));
  MB_TRY_ASSIGN(int version, parse_format(text, shown));
  return std::optional<int>(version);
}

} // namespace

Store::Store(std::unique_ptr<StoreFs> fs)
    : m_fs(std::move(fs)), m_temp(std::make_unique<TempArea>(*m_fs)),
      m_blobs(std::make_unique<LocalBlobStore>(*m_fs, *m_temp)),
      m_layers(std::make_unique<LayerStore>(*m_fs, *m_temp)),
      m_names(std::make_unique<NameStore>(*m_fs, *m_temp, *m_blobs)),
      m_cache(std::make_unique<BuildCache>(*m_fs, *m_temp)) {}

Store::~Store() = default;

BlobStore& Store::blobs() {
  return *m_blobs;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& root) {
  MB_TRY_ASSIGN(auto fs, RealStoreFs::open(root, RealStoreFs::Create::yes));
  return open(std::unique_ptr<StoreFs>(std::move(fs)));
}

Result<std::unique_ptr<Store>> Store::open(std::unique_ptr<StoreFs> fs) {
  std::unique_ptr<Store> store(new Store(std::move(fs)));
  StoreFs& sfs = *store->m_fs;
  const std::string context = "open store " + sfs.absolute("");

  MB_TRY_ASSIGN(auto found, read_format(sfs).map_error(
                                [&](Error error) { return std::move(error).wrap(context); }));
  if (!found) {
    MB_TRY_ASSIGN(auto entries, sfs.list(""));
    for (const auto& entry : entries) {
      if (!allowed_before_format(entry.name)) {
        return fail(Error(Code::usage, "\"" + sfs.absolute("") + "\" is not empty and has no \"" +
                                           std::string(k_format_file) +
                                           "\" file: not a minibuild store (found \"" + entry.name +
                                           "\")")
                        .wrap(context));
      }
    }
    MB_TRY_CONTEXT(ensure_dir(sfs, TempArea::k_dir), context);
    MB_TRY_CONTEXT(write_format(sfs, *store->m_temp, k_format_version), context);
    found = k_format_version;
  }
  const int version = *found;
  if (version > k_format_version) {
    return fail(Error(Code::unsupported, "store format version " + std::to_string(version) +
                                             " is newer than this minibuild supports (" +
                                             std::to_string(k_format_version) +
                                             "); use a newer minibuild or another --root")
                    .wrap(context));
  }
  if (version < k_oldest_supported_format_version) {
    return fail(Error(Code::unsupported,
                      "store format version " + std::to_string(version) +
                          " is too old (oldest supported: " +
                          std::to_string(k_oldest_supported_format_version) +
                          "); remove the store or use an older minibuild to export its images")
                    .wrap(context));
  }
  MB_TRY_CONTEXT(ensure_dir(sfs, TempArea::k_dir), context);
  MB_TRY_CONTEXT(ensure_layout(sfs), context);
  if (version < k_format_version) {
    MB_TRY_ASSIGN(StoreLock lock, store->lock(LockMode::exclusive, Wait::yes));
    MB_TRY_CONTEXT(migrate(sfs, *store->m_temp, version), context);
  }
  store->m_format_version = k_format_version;
  return store;
}

Result<StoreLock> Store::lock(LockMode mode, Wait wait) {
  auto fd = m_fs->lock(k_lock_file, mode, wait);
  if (!fd) {
    if (fd.error().sys_errno() == EWOULDBLOCK) {
      return fail(std::move(fd).error().wrap(
          "store " + root() + " is in use by another minibuild process" +
          (mode == LockMode::exclusive ? "" : " (prune or fsck --repair is running)")));
    }
    return fail(std::move(fd).error());
  }
  return StoreLock(std::move(*fd), mode);
}

Result<std::size_t> Store::clean_temp() {
  return m_temp->clean_stale();
}

} // namespace minibuild::store
