// Push-style byte streams: the counterpart of oci::ByteSource.
//
// A layer export pushes the compressed blob into a ByteSink; the store's blob writer (an atomic
// temp file that hashes as it writes) implements it, tests use StringSink.
#pragma once

#include <minibuild/base/error.hpp>

#include <span>
#include <string>

namespace minibuild::layer {

/// A sequential sink of bytes. write() consumes the whole span or fails; a failed sink is not
/// written again by minibuild (the caller discards what it holds). Not thread-safe: one writer
/// at a time (export_layer() calls it only from the thread that called export_layer()).
class ByteSink {
public:
  virtual ~ByteSink() = default;
  virtual Result<void> write(std::span<const char> bytes) = 0;
};

/// A ByteSink that appends to a string in memory (tests, small blobs).
class StringSink : public ByteSink {
public:
  Result<void> write(std::span<const char> bytes) override {
    m_bytes.append(bytes.data(), bytes.size());
    return {};
  }
  const std::string& bytes() const { return m_bytes; }
  std::string take() { return std::move(m_bytes); }

private:
  std::string m_bytes;
};

} // namespace minibuild::layer
