#include <minibuild/base/unique_fd.hpp>
#include <minibuild/store/stat_cache.hpp>

#include <climits>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <string_view>
#include <unistd.h>

namespace minibuild::store {

namespace {

constexpr std::string_view k_signature = "minibuild-stat-cache 1\n";
constexpr std::size_t k_digest_bytes = 32;

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::int64_t ns_of(const struct timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Fixed-width little-endian fields, whatever the host: the file may outlive a machine.
void put_u64(std::string& out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out += static_cast<char>((value >> (8 * i)) & 0xff);
  }
}

void put_u32(std::string& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    out += static_cast<char>((value >> (8 * i)) & 0xff);
  }
}

void put_digest(std::string& out, const oci::Digest& digest) {
  const auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  const std::string& hex = digest.hex();
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>((nibble(hex[i]) << 4) | nibble(hex[i + 1]));
  }
}

// A bounds-checked reader over the loaded bytes; any overrun marks the whole file bad.
class Reader {
public:
  explicit Reader(std::string_view data) : m_data(data) {}

  bool ok() const { return m_ok; }
  bool at_end() const { return m_pos == m_data.size(); }

  std::string_view take(std::size_t n) {
    if (!m_ok || m_data.size() - m_pos < n) {
      m_ok = false;
      return {};
    }
    std::string_view out = m_data.substr(m_pos, n);
    m_pos += n;
    return out;
  }
  std::uint64_t u64() {
    std::string_view bytes = take(8);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    }
    return value;
  }
  std::uint32_t u32() {
    std::string_view bytes = take(4);
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      value |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    }
    return value;
  }
  std::uint8_t u8() {
    std::string_view bytes = take(1);
    return bytes.empty() ? 0 : static_cast<std::uint8_t>(bytes[0]);
  }
  oci::Digest digest() {
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string_view bytes = take(k_digest_bytes);
    if (!m_ok) {
      return {};
    }
    std::string hex;
    hex.reserve(2 * k_digest_bytes);
    for (char c : bytes) {
      const auto byte = static_cast<unsigned char>(c);
      hex += k_hex[byte >> 4];
      hex += k_hex[byte & 0xf];
    }
    auto parsed = oci::Digest::from_hex(oci::DigestAlgorithm::sha256, hex);
    if (!parsed) {
      m_ok = false;
      return {};
    }
    return *parsed;
  }

private:
  std::string_view m_data;
  std::size_t m_pos = 0;
  bool m_ok = true;
};

Result<std::optional<std::string>> read_whole(const std::string& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return std::optional<std::string>();
    }
    return fail_errno(errno, "open stat cache " + quoted(file));
  }
  std::string data;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno(errno, "read stat cache " + quoted(file));
    }
    if (n == 0) {
      break;
    }
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return std::optional<std::string>(std::move(data));
}

Result<void> make_directories(const std::string& dir) {
  std::size_t pos = 1;
  while (pos <= dir.size()) {
    std::size_t slash = dir.find('/', pos);
    if (slash == std::string::npos) {
      slash = dir.size();
    }
    const std::string prefix = dir.substr(0, slash);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail_errno(errno, "create directory " + quoted(prefix));
    }
    pos = slash + 1;
  }
  return {};
}

Result<void> write_all(int fd, std::string_view data, const std::string& what) {
  std::size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno(errno, "write " + quoted(what));
    }
    written += static_cast<std::size_t>(n);
  }
  return {};
}

} // namespace

std::string StatCache::file_for(const std::string& store_root, const std::string& context_dir) {
  // The same context reached by another spelling (a trailing slash, a symlinked path) should
  // find the same cache; a path realpath cannot resolve is taken as given.
  char resolved[PATH_MAX];
  const std::string absolute =
      ::realpath(context_dir.c_str(), resolved) != nullptr ? std::string(resolved) : context_dir;
  return store_root + "/cache/stat/" + oci::sha256_of(absolute).hex() + ".bin";
}

Result<StatCache> StatCache::load(std::string file, std::int64_t build_start_ns) {
  StatCache cache(std::move(file), build_start_ns);
  MB_TRY_ASSIGN(std::optional<std::string> data, read_whole(cache.m_file));
  if (!data || data->size() < k_signature.size() + k_digest_bytes ||
      std::string_view(*data).substr(0, k_signature.size()) != k_signature) {
    return cache;
  }
  const std::string_view body = std::string_view(*data).substr(0, data->size() - k_digest_bytes);
  std::string expected;
  put_digest(expected, oci::sha256_of(body));
  if (std::string_view(*data).substr(body.size()) != expected) {
    return cache; // torn or tampered: start over
  }
  Reader in(body.substr(k_signature.size()));
  const std::uint64_t count = in.u64();
  std::unordered_map<std::string, Entry> entries;
  entries.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, 1u << 20)));
  for (std::uint64_t i = 0; i < count && in.ok(); ++i) {
    const std::uint32_t length = in.u32();
    std::string path(in.take(length));
    Entry entry;
    entry.dev = in.u64();
    entry.ino = in.u64();
    entry.size = in.u64();
    entry.mtime_ns = static_cast<std::int64_t>(in.u64());
    entry.ctime_ns = static_cast<std::int64_t>(in.u64());
    entry.age = in.u8();
    const bool has_xattrs = in.u8() != 0;
    entry.digests.content = in.digest();
    if (has_xattrs) {
      entry.digests.xattrs = in.digest();
    }
    entries.emplace(std::move(path), std::move(entry));
  }
  if (in.ok() && in.at_end()) {
    cache.m_entries = std::move(entries);
  }
  return cache;
}

std::optional<FileDigests> StatCache::lookup(const std::string& rel, const struct stat& st) {
  auto found = m_entries.find(rel);
  if (found == m_entries.end()) {
    return std::nullopt;
  }
  m_pending = true;
  Entry& entry = found->second;
  if (entry.dev != static_cast<std::uint64_t>(st.st_dev) ||
      entry.ino != static_cast<std::uint64_t>(st.st_ino) ||
      entry.size != static_cast<std::uint64_t>(st.st_size) || entry.mtime_ns != ns_of(st.st_mtim) ||
      entry.ctime_ns != ns_of(st.st_ctim)) {
    return std::nullopt;
  }
  entry.used = true;
  ++m_hits;
  return entry.digests;
}

bool StatCache::record(const std::string& rel, const struct stat& st, const FileDigests& digests) {
  // Racily clean: a write after our read could land in the same timestamp granule and leave
  // the stat as it is now (git's "racy git" problem, Documentation/technical/racy-git.txt).
  m_pending = true;
  const std::int64_t quiet_since = m_build_start_ns - k_racy_window_ns;
  if (ns_of(st.st_mtim) >= quiet_since || ns_of(st.st_ctim) >= quiet_since) {
    ++m_racy;
    if (m_entries.erase(rel) > 0) {
      m_dirty = true;
    }
    return false;
  }
  Entry entry;
  entry.dev = static_cast<std::uint64_t>(st.st_dev);
  entry.ino = static_cast<std::uint64_t>(st.st_ino);
  entry.size = static_cast<std::uint64_t>(st.st_size);
  entry.mtime_ns = ns_of(st.st_mtim);
  entry.ctime_ns = ns_of(st.st_ctim);
  entry.used = true;
  entry.digests = digests;
  m_entries[rel] = std::move(entry);
  m_dirty = true;
  return true;
}

Result<void> StatCache::save() {
  if (!m_pending) {
    return {}; // nothing looked up or recorded since the last save
  }
  bool changed = m_dirty;
  for (const auto& [path, entry] : m_entries) {
    changed = changed || !entry.used || entry.age != 0;
  }
  if (!changed) {
    return {};
  }
  std::string out(k_signature);
  std::string records;
  std::uint64_t count = 0;
  for (auto& [path, entry] : m_entries) {
    const std::uint8_t age = entry.used ? 0 : static_cast<std::uint8_t>(entry.age + 1);
    if (age > k_max_age) {
      continue;
    }
    put_u32(records, static_cast<std::uint32_t>(path.size()));
    records += path;
    put_u64(records, entry.dev);
    put_u64(records, entry.ino);
    put_u64(records, entry.size);
    put_u64(records, static_cast<std::uint64_t>(entry.mtime_ns));
    put_u64(records, static_cast<std::uint64_t>(entry.ctime_ns));
    records += static_cast<char>(age);
    records += static_cast<char>(entry.digests.xattrs.empty() ? 0 : 1);
    put_digest(records, entry.digests.content);
    if (!entry.digests.xattrs.empty()) {
      put_digest(records, entry.digests.xattrs);
    }
    ++count;
  }
  put_u64(out, count);
  out += records;
  put_digest(out, oci::sha256_of(out));

  const auto slash = m_file.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : m_file.substr(0, slash);
  MB_TRY(make_directories(dir));
  std::random_device random;
  const std::string temp =
      m_file + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(random());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    return fail_errno(errno, "create " + quoted(temp));
  }
  auto written = write_all(fd.get(), out, temp);
  if (written && ::fsync(fd.get()) != 0) {
    written = fail_errno(errno, "fsync " + quoted(temp));
  }
  if (written && ::rename(temp.c_str(), m_file.c_str()) != 0) {
    written = fail_errno(errno, "rename " + quoted(temp) + " to " + quoted(m_file));
  }
  if (!written) {
    ::unlink(temp.c_str());
    return written;
  }
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd || ::fsync(dir_fd.get()) != 0) {
    return fail_errno(errno, "fsync directory " + quoted(dir));
  }
  // The saved state is now the loaded state: ages advanced, every entry unused again.
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    Entry& entry = it->second;
    entry.age = entry.used ? 0 : static_cast<std::uint8_t>(entry.age + 1);
    entry.used = false;
    it = entry.age > k_max_age ? m_entries.erase(it) : std::next(it);
  }
  m_dirty = false;
  m_pending = false;
  return {};
}

} // namespace minibuild::store
