#include "local_blob_store.hpp"

#include "fd_source.hpp"
#include "temp_area.hpp"

#include <algorithm>
#include <cerrno>
#include <sys/stat.h>
#include <vector>

namespace minibuild::store {

namespace {

constexpr std::string_view k_blobs_dir = "blobs";
constexpr std::size_t k_copy_buffer = 64 * 1024;

std::string describe(const std::optional<oci::Digest>& digest, std::optional<std::uint64_t> size) {
  std::string text = digest ? digest->to_string() : std::string("any digest");
  if (size) {
    text += " (" + std::to_string(*size) + " bytes)";
  }
  return text;
}

// Hashes as it writes into a temporary file of the session; only commit() moves the file to
// blobs/<alg>/<hex>. The steps of a commit, each safe to be the last one (docs/store.md):
// fsync temp → rename into place → fsync the blobs directory.
class LocalBlobWriter : public BlobWriter {
public:
  LocalBlobWriter(StoreFs& fs, std::string temp_path, UniqueFd fd, BlobExpectation expected)
      : m_fs(fs), m_temp_path(std::move(temp_path)), m_fd(std::move(fd)),
        m_expected(std::move(expected)),
        m_hasher(m_expected.digest ? m_expected.digest->algorithm()
                                   : oci::DigestAlgorithm::sha256) {}

  ~LocalBlobWriter() override {
    if (m_state != State::committed) {
      m_fd.reset();
      // Best effort: if this fails too (a dying disk, a simulated crash), the file stays in our
      // session directory and clean_temp() removes it later.
      (void)m_fs.remove_file(m_temp_path);
    }
  }

  Result<void> write(std::span<const char> bytes) override {
    MB_TRY(check_open());
    if (m_expected.size && m_bytes + bytes.size() > *m_expected.size) {
      return dead(Error(Code::corrupt, "blob " + describe(m_expected.digest, m_expected.size) +
                                           ": content is longer than expected"));
    }
    m_hasher.update(std::string_view(bytes.data(), bytes.size()));
    m_bytes += bytes.size();
    auto written = m_fs.write(m_fd.get(), bytes);
    if (!written) {
      return dead(
          std::move(written).error().wrap("write temporary blob " + m_fs.absolute(m_temp_path)));
    }
    return {};
  }

  Result<BlobInfo> commit() override {
    MB_TRY(check_open());
    const std::uint64_t size = m_bytes;
    const oci::Digest digest = m_hasher.finish();
    if ((m_expected.digest && *m_expected.digest != digest) ||
        (m_expected.size && *m_expected.size != size)) {
      return dead(Error(Code::corrupt, "blob content is " + describe(digest, size) + ", expected " +
                                           describe(m_expected.digest, m_expected.size)));
    }
    const std::string target = LocalBlobStore::path_of(digest);
    auto finish = [&]() -> Result<BlobInfo> {
      // Idempotent put: an existing blob of the right size is the same content (content
      // addressing), so nothing is rewritten. A wrong size can only be damage; replace it.
      MB_TRY_ASSIGN(auto existing, m_fs.stat(target));
      if (existing && existing->type == EntryType::file && existing->size == size) {
        m_fd.reset();
        MB_TRY(m_fs.remove_file(m_temp_path));
        return BlobInfo{digest, size};
      }
      MB_TRY(m_fs.sync_file(m_fd.get()));
      m_fd.reset();
      const std::string dir = LocalBlobStore::dir_of(digest.algorithm());
      MB_TRY_ASSIGN(auto dir_stat, m_fs.stat(dir));
      if (!dir_stat) {
        MB_TRY(m_fs.make_dir(dir));
      }
      MB_TRY(m_fs.rename(m_temp_path, target));
      MB_TRY(m_fs.sync_dir(dir));
      return BlobInfo{digest, size};
    };
    auto result = finish();
    if (!result) {
      return dead(std::move(result).error().wrap("store blob " + digest.to_string()));
    }
    m_state = State::committed;
    return result;
  }

  std::uint64_t bytes_written() const override { return m_bytes; }

private:
  enum class State { open, failed, committed };

  Result<void> check_open() const {
    switch (m_state) {
    case State::open:
      return {};
    case State::failed:
      return fail(Code::internal, "blob writer used after an error");
    case State::committed:
      return fail(Code::internal, "blob writer used after commit");
    }
    return {};
  }

  tl::unexpected<Error> dead(Error error) {
    m_state = State::failed;
    return fail(std::move(error));
  }

  StoreFs& m_fs;
  std::string m_temp_path;
  UniqueFd m_fd;
  BlobExpectation m_expected;
  oci::Hasher m_hasher;
  std::uint64_t m_bytes = 0;
  State m_state = State::open;
};

} // namespace

std::string LocalBlobStore::dir_of(oci::DigestAlgorithm algorithm) {
  return std::string(k_blobs_dir) + "/" + std::string(oci::algorithm_name(algorithm));
}

std::string LocalBlobStore::path_of(const oci::Digest& digest) {
  return dir_of(digest.algorithm()) + "/" + digest.hex();
}

Result<std::unique_ptr<BlobWriter>> LocalBlobStore::open_writer(const BlobExpectation& expected) {
  if (expected.digest && expected.digest->empty()) {
    return fail(Code::internal, "open blob writer: expected digest is empty");
  }
  MB_TRY_ASSIGN(std::string temp_path, m_temp.new_path("blob"));
  MB_TRY_ASSIGN(UniqueFd fd, m_fs.create_file(temp_path));
  return std::unique_ptr<BlobWriter>(
      new LocalBlobWriter(m_fs, std::move(temp_path), std::move(fd), expected));
}

Result<std::unique_ptr<oci::VerifiedSource>>
LocalBlobStore::get(const oci::Digest& digest, std::optional<std::uint64_t> expected_size) {
  if (digest.empty()) {
    return fail(Code::internal, "get blob: digest is empty");
  }
  const std::string path = path_of(digest);
  auto fd = m_fs.open_read(path);
  if (!fd) {
    if (fd.error().code() == Code::not_found) {
      return fail(Code::not_found, "blob " + digest.to_string() + " is not in the store");
    }
    return fail(std::move(fd).error());
  }
  std::uint64_t size = 0;
  if (expected_size) {
    size = *expected_size;
  } else {
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) {
      return fail_errno(errno, "stat \"" + m_fs.absolute(path) + "\"");
    }
    size = static_cast<std::uint64_t>(st.st_size);
  }
  auto source = std::make_unique<FdSource>(std::move(*fd), "\"" + m_fs.absolute(path) + "\"");
  return std::make_unique<oci::VerifiedSource>(std::move(source), digest, size);
}

Result<std::optional<BlobInfo>> LocalBlobStore::stat(const oci::Digest& digest) {
  if (digest.empty()) {
    return fail(Code::internal, "stat blob: digest is empty");
  }
  MB_TRY_ASSIGN(auto st, m_fs.stat(path_of(digest)));
  if (!st) {
    return std::optional<BlobInfo>();
  }
  if (st->type != EntryType::file) {
    return fail(Code::corrupt, "blob " + m_fs.absolute(path_of(digest)) + " is not a regular file");
  }
  return std::optional<BlobInfo>(BlobInfo{digest, st->size});
}

Result<void> LocalBlobStore::remove(const oci::Digest& digest) {
  if (digest.empty()) {
    return fail(Code::internal, "remove blob: digest is empty");
  }
  MB_TRY_CONTEXT(m_fs.remove_file(path_of(digest)), "remove blob " + digest.to_string());
  return {};
}

Result<std::vector<oci::Digest>> LocalBlobStore::list() {
  std::vector<oci::Digest> digests;
  for (const auto algorithm : {oci::DigestAlgorithm::sha256, oci::DigestAlgorithm::sha512}) {
    MB_TRY_ASSIGN(auto entries, m_fs.list(dir_of(algorithm)));
    for (const auto& entry : entries) {
      if (entry.type != EntryType::file) {
        continue;
      }
      auto digest = oci::Digest::from_hex(algorithm, entry.name);
      if (digest) {
        digests.push_back(std::move(*digest));
      }
    }
  }
  std::sort(digests.begin(), digests.end());
  return digests;
}

Result<BlobInfo> BlobStore::put(oci::ByteSource& source, const BlobExpectation& expected) {
  MB_TRY_ASSIGN(auto writer, open_writer(expected));
  std::vector<char> buffer(k_copy_buffer);
  for (;;) {
    MB_TRY_ASSIGN(std::size_t count, source.read(buffer));
    if (count == 0) {
      break;
    }
    MB_TRY(writer->write(std::span<const char>(buffer.data(), count)));
  }
  return writer->commit();
}

Result<std::string> BlobStore::read(const oci::Digest& digest, std::size_t max_bytes) {
  MB_TRY_ASSIGN(auto source, get(digest));
  return oci::read_all(*source, max_bytes);
}

} // namespace minibuild::store
