// Pull-style byte streams, and the reader that checks a blob's size and digest.
//
// The oci module does no I/O itself: a store, a registry client or an archive reader hands it a
// ByteSource, and every blob that comes from outside is read through a VerifiedSource, which
// refuses content that does not match its descriptor (STYLE.md habit 12; umoci's
// VerifiedReadCloser).
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace minibuild::oci {

/// A sequential source of bytes. read() fills up to buffer.size() bytes and returns how many it
/// wrote; 0 means end of stream (and only that: a source never returns 0 for an empty buffer
/// request it could have filled). Errors are returned, never thrown. Not thread-safe.
class ByteSource {
public:
  virtual ~ByteSource() = default;
  virtual Result<std::size_t> read(std::span<char> buffer) = 0;
};

/// A ByteSource over bytes held in memory (a manifest, a test blob). Owns its copy.
class StringSource : public ByteSource {
public:
  explicit StringSource(std::string bytes) : m_bytes(std::move(bytes)) {}
  Result<std::size_t> read(std::span<char> buffer) override;

private:
  std::string m_bytes;
  std::size_t m_offset = 0;
};

/// Wraps a ByteSource and checks, as the bytes pass, that the stream is exactly
/// `expected_size` bytes long and hashes to `expected_digest`.
///
/// - Reading past `expected_size` fails at once with Code::corrupt; the excess is never handed
///   to the caller.
/// - When the inner source reports end of stream, a short stream or a digest mismatch fails
///   with Code::corrupt; the message names the expected and the actual size or digest.
/// - Only a read() that returns 0 confirms the content: a caller must read until then before
///   it trusts (commits, renames, parses) what it has read.
/// - After an error every further read() returns the same error; after a verified end of
///   stream every further read() returns 0 without touching the inner source.
/// An empty expected digest is a programming error and fails with Code::internal.
class VerifiedSource : public ByteSource {
public:
  VerifiedSource(std::unique_ptr<ByteSource> inner, Digest expected_digest,
                 std::uint64_t expected_size);

  Result<std::size_t> read(std::span<char> buffer) override;

  /// Bytes passed to the caller so far.
  std::uint64_t bytes_read() const { return m_bytes; }
  /// True once end of stream was reached and size and digest matched.
  bool verified() const { return m_state == State::verified; }

private:
  enum class State { reading, verified, failed };

  std::unique_ptr<ByteSource> m_inner;
  Digest m_expected_digest;
  std::uint64_t m_expected_size;
  Hasher m_hasher;
  std::uint64_t m_bytes = 0;
  State m_state = State::reading;
  std::optional<Error> m_error;
};

/// Reads `source` to its end into a string. Fails with Code::corrupt when the stream is longer
/// than `max_bytes` (a guard against a registry that sends a gigabyte "manifest").
Result<std::string> read_all(ByteSource& source, std::size_t max_bytes);

} // namespace minibuild::oci
