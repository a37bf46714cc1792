#include <minibuild/layer/decompress.hpp>

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace minibuild::layer {

namespace {

constexpr std::size_t k_input_buffer_size = 128 * 1024;

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

  z_stream gzip{};
  bool gzip_ready = false;
  bool member_done = false;

  ZSTD_DCtx* zstd = nullptr;
  std::size_t zstd_hint = 0; // last ZSTD_decompressStream() result: 0 at a frame end

  ~State() {
    if (gzip_ready) {
      inflateEnd(&gzip);
    }
    ZSTD_freeDCtx(zstd);
  }
  std::size_t available() const { return length - position; }
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
    // 15 + 16: a gzip wrapper (not zlib, not raw), 32 KiB window.
    if (inflateInit2(&s.gzip, 15 + 16) != Z_OK) {
      return fail(Code::internal, "inflateInit2 failed");
    }
    s.gzip_ready = true;
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
        inflateReset(&s.gzip);
        s.member_done = false;
      }
      s.gzip.next_in = reinterpret_cast<Bytef*>(s.input.data() + s.position);
      s.gzip.avail_in = static_cast<uInt>(s.available());
      s.gzip.next_out = reinterpret_cast<Bytef*>(buffer.data());
      s.gzip.avail_out = static_cast<uInt>(std::min<std::size_t>(buffer.size(), 1u << 30));
      uInt offered = s.gzip.avail_out;
      int rc = inflate(&s.gzip, Z_NO_FLUSH);
      s.position = s.length - s.gzip.avail_in;
      std::size_t produced = offered - s.gzip.avail_out;
      if (rc == Z_STREAM_END) {
        s.member_done = true;
      } else if (rc == Z_BUF_ERROR) {
        if (!have_input) {
          return fail(Code::corrupt, "gzip: the stream is truncated");
        }
      } else if (rc != Z_OK) {
        return fail(Code::corrupt,
                    std::string("gzip: ") + (s.gzip.msg != nullptr ? s.gzip.msg : "invalid data"));
      }
      if (produced > 0) {
        return produced;
      }
      if (!have_input && !s.member_done) {
        return fail(Code::corrupt, "gzip: the stream is truncated");
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
