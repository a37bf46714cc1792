#include <minibuild/oci/byte_source.hpp>

#include <algorithm>
#include <array>
#include <cstring>

namespace minibuild::oci {

Result<std::size_t> StringSource::read(std::span<char> buffer) {
  std::size_t count = std::min(buffer.size(), m_bytes.size() - m_offset);
  std::memcpy(buffer.data(), m_bytes.data() + m_offset, count);
  m_offset += count;
  return count;
}

VerifiedSource::VerifiedSource(std::unique_ptr<ByteSource> inner, Digest expected_digest,
                               std::uint64_t expected_size)
    : m_inner(std::move(inner)), m_expected_digest(std::move(expected_digest)),
      m_expected_size(expected_size), m_hasher(m_expected_digest.algorithm()) {}

Result<std::size_t> VerifiedSource::read(std::span<char> buffer) {
  switch (m_state) {
  case State::verified:
    return std::size_t{0};
  case State::failed:
    return fail(*m_error);
  case State::reading:
    break;
  }
  auto failed = [this](Error error) -> tl::unexpected<Error> {
    m_state = State::failed;
    m_error = error;
    return fail(std::move(error));
  };
  if (m_expected_digest.empty()) {
    return failed(Error(Code::internal, "verified read without an expected digest"));
  }
  const std::string what = "blob " + m_expected_digest.to_string();

  // Ask the inner source for one byte more than may remain, so that a stream longer than its
  // descriptor is caught here, before the caller sees the excess, even if the caller stops
  // reading at exactly expected_size bytes.
  std::uint64_t remaining = m_expected_size - m_bytes;
  std::array<char, 1> probe{};
  std::span<char> target = buffer;
  if (buffer.size() > remaining) {
    target = remaining == 0 ? std::span<char>(probe) : buffer.first(remaining + 1);
  }
  if (target.empty()) {
    return std::size_t{0}; // the caller asked for nothing
  }
  auto count = m_inner->read(target);
  if (!count) {
    return failed(std::move(count).error().wrap("read " + what));
  }
  if (*count > remaining) {
    return failed(Error(Code::corrupt, what + ": size mismatch: expected " +
                                           std::to_string(m_expected_size) + " bytes, got more"));
  }
  if (*count == 0) {
    if (m_bytes != m_expected_size) {
      return failed(Error(Code::corrupt, what + ": size mismatch: expected " +
                                             std::to_string(m_expected_size) + " bytes, got " +
                                             std::to_string(m_bytes)));
    }
    auto actual = m_hasher.finish();
    if (actual != m_expected_digest) {
      return failed(Error(Code::corrupt, what + ": digest mismatch: expected " +
                                             m_expected_digest.to_string() + ", got " +
                                             actual.to_string()));
    }
    m_state = State::verified;
    return std::size_t{0};
  }
  m_hasher.update(std::string_view(target.data(), *count));
  m_bytes += *count;
  return *count;
}

Result<std::string> read_all(ByteSource& source, std::size_t max_bytes) {
  std::string out;
  std::array<char, 64 * 1024> chunk{};
  while (true) {
    MB_TRY_ASSIGN(std::size_t count, source.read(chunk));
    if (count == 0) {
      return out;
    }
    if (count > max_bytes - out.size()) {
      return fail(Code::corrupt,
                  "content longer than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(chunk.data(), count);
  }
}

} // namespace minibuild::oci
