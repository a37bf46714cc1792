// Reading layer blobs whatever their compression.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/media_types.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace minibuild::layer {

/// The compression announced by the first bytes of a blob: gzip (1f 8b), zstd (28 b5 2f fd,
/// or a skippable frame 5? 2a 4d 18), anything else is none. Needs 4 bytes to recognise zstd;
/// shorter input is none unless it is a gzip magic.
oci::Compression detect_compression(std::span<const char> head);

/// A ByteSource of the uncompressed bytes of a layer blob read from `inner`, which it borrows
/// (it must outlive this object). The compression is detected from the magic on the first
/// read(). Concatenated gzip members and zstd frames are read as one stream. A truncated stream
/// or bytes after the last gzip member are Code::corrupt. Not thread-safe.
class DecompressingSource : public oci::ByteSource {
public:
  explicit DecompressingSource(oci::ByteSource& inner);
  ~DecompressingSource() override;
  DecompressingSource(const DecompressingSource&) = delete;
  DecompressingSource& operator=(const DecompressingSource&) = delete;

  Result<std::size_t> read(std::span<char> buffer) override;

  /// The detected compression; nullopt before the first read().
  std::optional<oci::Compression> compression() const { return m_compression; }
  /// Compressed bytes taken from the inner source so far.
  std::uint64_t compressed_bytes() const { return m_compressed_bytes; }

private:
  struct State;
  Result<void> detect();
  Result<bool> fill_input();

  oci::ByteSource& m_inner;
  std::unique_ptr<State> m_state;
  std::optional<oci::Compression> m_compression;
  std::uint64_t m_compressed_bytes = 0;
};

} // namespace minibuild::layer
