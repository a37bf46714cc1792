#include <minibuild/layer/decompress.hpp>

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace minibuild::layer {

namespace {

constexpr std::size_t k_input_buffer_size = 128 * 1024;

// FLG bits 5-7 of a gzip member header are reserved and must be zero (RFC 1952 section 2.3.1);
// ISA-L ignores them, zlib refused them, and so do we.
constexpr std::uint32_t k_gzip_reserved_flags = 0xe0;

// Where an ISA-L error came from: the same code means a different thing in the header and in
// the deflate data or trailer.
enum class GzipPart { header, body };

Error gzip_error(int rc, GzipPart part) {
  switch (rc) {
  case ISAL_INVALID_BLOCK:
    return Error(Code::corrupt, "gzip: invalid deflate block");
  case ISAL_INVALID_SYMBOL:
    return Error(Code::corrupt, "gzip: invalid code in a deflate block");
  case ISAL_INVALID_LOOKBACK:
    return Error(Code::corrupt, "gzip: invalid distance too far back");
  case ISAL_INVALID_WRAPPER:
    return Error(Code::corrupt, "gzip: invalid member header");
  case ISAL_UNSUPPORTED_METHOD:
    return Error(Code::corrupt, "gzip: unknown compression method");
  case ISAL_INCORRECT_CHECKSUM:
    return Error(Code::corrupt, part == GzipPart::header
                                    ? "gzip: header CRC mismatch"
                                    : "gzip: CRC-32 or length mismatch in the member trailer");
  default:
    return Error(Code::corrupt, "gzip: ISA-L inflate error " + std::to_string(rc));
  }
}

} // namespace

oci::Compression detect_compression(std::span<const char> head) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(head[i]); };
  if (head.size() >= 2 && byte(0) == 0x1f && byte(1) == 0x8b) {
    return oci::Compression::gzip;
  }
  if (head.size() >= 4) {
    // A zstd frame (RFC 8878 section 3.1.1) or a skippable frame (magic 0x184D2A50..5F),
    // little-endian on the wire.
    if (byte(0) == 0x28 && byte(1) == 0xb5 && byte(2) == 0x2f && byte(3) == 0xfd) {
      return oci::Compression::zstd;
    }
    if ((byte(0) & 0xf0) == 0x50 && byte(1) == 0x2a && byte(2) == 0x4d && byte(3) == 0x18) {
      return oci::Compression::zstd;
    }
  }
  return oci::Compression::none;
}

struct DecompressingSource::State {
  std::vector<char> input = std::vector<char>(k_input_buffer_size);
  std::size_t position = 0; // next unread byte of `input`
  std::size_t length = 0;   // bytes held in `input`
  bool inner_end = false;

  // ISA-L igzip: far faster than zlib's inflate on the layers we pull. Allocated only for gzip
  // blobs: the state holds 64 KiB of history and the Huffman tables.
  std::unique_ptr<inflate_state> gzip;
  isal_gzip_header gzip_header{};
  bool header_done = false;
  bool member_done = false;

  ZSTD_DCtx* zstd = nullptr;
  std::size_t zstd_hint = 0; // last ZSTD_decompressStream() result: 0 at a frame end

  ~State() { ZSTD_freeDCtx(zstd); }
  std::size_t available() const { return length - position; }

  // Readies `gzip` for the member that starts at the next input byte. igzip_lib.h does not say
  // that isal_inflate_reset keeps crc_flag (2.30 does), so it is set again: with ISAL_GZIP,
  // isal_inflate checks the member's CRC-32 and ISIZE trailer itself.
  void start_gzip_member() {
    isal_inflate_reset(gzip.get());
    gzip->crc_flag = ISAL_GZIP;
    isal_gzip_header_init(&gzip_header);
    header_done = false;
    member_done = false;
  }
};

DecompressingSource::DecompressingSource(oci::ByteSource& inner)
    : m_inner(inner), m_state(std::make_unique<State>()) {}

DecompressingSource::~DecompressingSource() = default;

// Reads more compressed bytes when the buffer is used up; false at the inner end of stream.
Result<bool> DecompressingSource::fill_input() {
  State& s = *m_state;
  if (s.available() > 0) {
    return true;
  }
  if (s.inner_end) {
    return false;
  }
  MB_TRY_ASSIGN(std::size_t got, m_inner.read(std::span<char>(s.input.data(), s.input.size())));
  m_compressed_bytes += got;
  s.position = 0;
  s.length = got;
  if (got == 0) {
    s.inner_end = true;
    return false;
  }
  return true;
}

Result<void> DecompressingSource::detect() {
  State& s = *m_state;
  // Gather up to 4 bytes: sources may hand them over one read at a time.
  while (s.length < 4 && !s.inner_end) {
    MB_TRY_ASSIGN(std::size_t got, m_inner.read(std::span<char>(s.input.data() + s.length,
                                                                s.input.size() - s.length)));
    m_compressed_bytes += got;
    if (got == 0) {
      s.inner_end = true;
    }
    s.length += got;
  }
  m_compression = detect_compression(std::span<const char>(s.input.data(), s.length));
  if (*m_compression == oci::Compression::gzip) {
    s.gzip = std::make_unique<inflate_state>();
    isal_inflate_init(s.gzip.get());
    s.start_gzip_member();
  } else if (*m_compression == oci::Compression::zstd) {
    s.zstd = ZSTD_createDCtx();
    if (s.zstd == nullptr) {
      return fail(Code::internal, "ZSTD_createDCtx failed");
    }
  }
  return {};
}

Result<std::size_t> DecompressingSource::read(std::span<char> buffer) {
  if (!m_compression) {
    MB_TRY(detect());
  }
  if (buffer.empty()) {
    return 0;
  }
  State& s = *m_state;
  switch (*m_compression) {
  case oci::Compression::none: {
    if (s.available() > 0) {
      std::size_t length = std::min(buffer.size(), s.available());
      std::memcpy(buffer.data(), s.input.data() + s.position, length);
      s.position += length;
      return length;
    }
    if (s.inner_end) {
      return 0;
    }
    MB_TRY_ASSIGN(std::size_t got, m_inner.read(buffer));
    m_compressed_bytes += got;
    if (got == 0) {
      s.inner_end = true;
    }
    return got;
  }
  case oci::Compression::gzip:
    while (true) {
      MB_TRY_ASSIGN(bool have_input, fill_input());
      if (s.member_done) {
        if (!have_input) {
          return 0; // the end of the last member is the end of the stream
        }
        // Another member follows (pigz -i, concatenated gzip files): RFC 1952 section 2.2.
        if (static_cast<unsigned char>(s.input[s.position]) != 0x1f) {
          return fail(Code::corrupt, "gzip: unexpected data after the end of the gzip stream");
        }
        s.start_gzip_member();
      }
      inflate_state& z = *s.gzip;
      z.next_in = reinterpret_cast<std::uint8_t*>(s.input.data() + s.position);
      z.avail_in = static_cast<std::uint32_t>(s.available());
      if (!s.header_done) {
        // The header is read here rather than left to isal_inflate(ISAL_GZIP): that one keeps
        // the header's running CRC in a local, so in ISA-L 2.30 an FHCRC header split across
        // reads fails its check. `gzip_header` persists between reads instead.
        int rc = isal_read_gzip_header(&z, &s.gzip_header);
        s.position = s.length - z.avail_in;
        if (rc == ISAL_END_INPUT) {
          if (!have_input) {
            return fail(Code::corrupt, "gzip: the stream is truncated");
          }
          continue;
        }
        if (rc != ISAL_DECOMP_OK) {
          return fail(gzip_error(rc, GzipPart::header));
        }
        if ((s.gzip_header.flags & k_gzip_reserved_flags) != 0) {
          return fail(Code::corrupt, "gzip: reserved header flags are set");
        }
        s.header_done = true;
      }
      std::uint32_t offered_in = z.avail_in;
      z.next_out = reinterpret_cast<std::uint8_t*>(buffer.data());
      z.avail_out = static_cast<std::uint32_t>(std::min<std::size_t>(buffer.size(), 1u << 30));
      std::uint32_t offered_out = z.avail_out;
      int rc = isal_inflate(&z);
      s.position = s.length - z.avail_in;
      std::size_t produced = offered_out - z.avail_out;
      if (rc != ISAL_DECOMP_OK) {
        return fail(gzip_error(rc, GzipPart::body));
      }
      if (z.block_state == ISAL_BLOCK_FINISH) {
        s.member_done = true; // the trailer was read and matched
      }
      if (produced > 0) {
        return produced;
      }
      if (!have_input && !s.member_done) {
        return fail(Code::corrupt, "gzip: the stream is truncated");
      }
      // The same input and state would give the same answer again: fail rather than spin.
      if (offered_in > 0 && z.avail_in == offered_in && !s.member_done) {
        return fail(Code::corrupt, "gzip: the decoder made no progress");
      }
    }
  case oci::Compression::zstd:
    while (true) {
      MB_TRY_ASSIGN(bool have_input, fill_input());
      ZSTD_inBuffer in{s.input.data() + s.position, s.available(), 0};
      ZSTD_outBuffer out{buffer.data(), buffer.size(), 0};
      std::size_t rc = ZSTD_decompressStream(s.zstd, &out, &in);
      if (ZSTD_isError(rc)) {
        return fail(Code::corrupt, std::string("zstd: ") + ZSTD_getErrorName(rc));
      }
      // Called with no input at a frame boundary, libzstd answers the size of the next frame
      // header; only a call that made progress says whether the stream ended cleanly.
      if (in.pos > 0 || out.pos > 0) {
        s.zstd_hint = rc;
      }
      s.position += in.pos;
      if (out.pos > 0) {
        return out.pos;
      }
      if (!have_input) {
        if (s.zstd_hint != 0) {
          return fail(Code::corrupt, "zstd: the stream is truncated");
        }
        return 0;
      }
    }
  }
  return fail(Code::internal, "unknown compression");
}

} // namespace minibuild::layer
