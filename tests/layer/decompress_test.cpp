// DecompressingSource's gzip path (ISA-L igzip): streams written by zlib with every header
// field, read through tiny and huge buffers and one input byte at a time, and every kind of
// damage (CRC, ISIZE, header CRC, truncation anywhere, trailing bytes) is Code::corrupt.
#include "layer_test_support.hpp"

#include <minibuild/layer/decompress.hpp>

#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

using namespace minibuild;
using namespace layer_test;

namespace {

/// Optional gzip header fields, written by zlib's deflateSetHeader (RFC 1952 section 2.3).
struct HeaderFields {
  std::string extra;   // FEXTRA when not empty
  std::string name;    // FNAME when not empty
  std::string comment; // FCOMMENT when not empty
  bool header_crc = false;
};

/// One gzip member of `data`, compressed by zlib (an independent encoder) at `level`.
std::string gzip_member(const std::string& data, int level = 6, const HeaderFields& fields = {}) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  gz_header header{};
  std::string extra = fields.extra;
  std::string name = fields.name;
  std::string comment = fields.comment;
  if (!extra.empty() || !name.empty() || !comment.empty() || fields.header_crc) {
    header.extra = extra.empty() ? Z_NULL : reinterpret_cast<Bytef*>(extra.data());
    header.extra_len = static_cast<uInt>(extra.size());
    header.name = name.empty() ? Z_NULL : reinterpret_cast<Bytef*>(name.data());
    header.comment = comment.empty() ? Z_NULL : reinterpret_cast<Bytef*>(comment.data());
    header.hcrc = fields.header_crc ? 1 : 0;
    header.os = 3;
    REQUIRE(deflateSetHeader(&stream, &header) == Z_OK);
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())) + 1024, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

/// Incompressible bytes (xorshift32), so that deflate writes stored blocks.
std::string random_bytes(std::size_t size, std::uint32_t seed) {
  std::string bytes(size, '\0');
  std::uint32_t state = seed | 1u;
  for (char& byte : bytes) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    byte = static_cast<char>(state >> 24);
  }
  return bytes;
}

/// A ByteSource that hands out at most `step` bytes per read(), as a slow socket might.
class TricklingSource : public oci::ByteSource {
public:
  TricklingSource(std::string bytes, std::size_t step) : m_bytes(std::move(bytes)), m_step(step) {}
  Result<std::size_t> read(std::span<char> buffer) override {
    std::size_t length = std::min({buffer.size(), m_step, m_bytes.size() - m_offset});
    std::copy_n(m_bytes.data() + m_offset, length, buffer.data());
    m_offset += length;
    return length;
  }

private:
  std::string m_bytes;
  std::size_t m_step;
  std::size_t m_offset = 0;
};

/// Reads `blob` to its end through a DecompressingSource, `input_step` compressed bytes and at
/// most `output_size` uncompressed bytes per read().
Result<std::string> decompress(const std::string& blob, std::size_t input_step,
                               std::size_t output_size) {
  TricklingSource inner(blob, input_step);
  layer::DecompressingSource source(inner);
  std::string out;
  std::vector<char> buffer(output_size);
  while (true) {
    MB_TRY_ASSIGN(std::size_t got, source.read(std::span<char>(buffer.data(), buffer.size())));
    if (got == 0) {
      break;
    }
    if (got > buffer.size()) {
      FAIL("read() returned " << got << " bytes for a " << buffer.size() << "-byte buffer");
    }
    out.append(buffer.data(), got);
  }
  CHECK(source.compression() == oci::Compression::gzip);
  CHECK(source.compressed_bytes() == blob.size());
  return out;
}

void require_corrupt(const Result<std::string>& result, const std::string& message_part) {
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::corrupt);
  CHECK_THAT(result.error().message(), Catch::Contains(message_part));
}

// The text and the noise of a layer: some megabytes that deflate shrinks, then some it cannot.
const std::string& large_sample() {
  static const std::string data = sample_bytes(5'000'000, 7) + random_bytes(2'000'000, 11);
  return data;
}

} // namespace

TEST_CASE("a multi-megabyte gzip stream reads the same through tiny and huge buffers",
          "[layer][decompress]") {
  const std::string& data = large_sample();
  std::string blob = gzip_member(data);
  for (std::size_t output_size : {std::size_t{13}, std::size_t{4096}, std::size_t{1} << 24}) {
    for (std::size_t input_step : {std::size_t{7}, std::size_t{1} << 24}) {
      INFO("output " << output_size << ", input " << input_step);
      auto out = decompress(blob, input_step, output_size);
      REQUIRE(out);
      CHECK(out->size() == data.size());
      CHECK(*out == data);
    }
  }
  // One byte out per read() on the first megabyte: every call returns exactly one byte.
  std::string head = data.substr(0, 1'000'000);
  auto out = decompress(gzip_member(head), 1u << 20, 1);
  REQUIRE(out);
  CHECK(*out == head);
}

TEST_CASE("several gzip members read one input byte at a time", "[layer][decompress]") {
  std::string text = sample_bytes(300'000, 3);
  std::string noise = random_bytes(100'000, 5);
  // An empty member, a stored one (level 0), a best-compression one with every header field.
  HeaderFields fields{"xfield", "layer.tar", "made by a test", true};
  std::string blob = gzip_member(text) + gzip_member("") + gzip_member(noise, 0) +
                     gzip_member(text, 9, fields) + gzip_member("z", 1);
  std::string expected = text + noise + text + "z";
  for (std::size_t output_size : {std::size_t{1} << 20, std::size_t{777}}) {
    INFO("output " << output_size);
    auto out = decompress(blob, 1, output_size);
    INFO((out ? std::string() : out.error().what()));
    REQUIRE(out);
    CHECK(*out == expected);
  }
}

TEST_CASE("gzip headers with FEXTRA, FNAME, FCOMMENT and FHCRC are read and checked",
          "[layer][decompress]") {
  std::string data = sample_bytes(50'000, 9);
  HeaderFields all{std::string(300, 'x'), "usr/lib/a-long-file-name.tar", "a comment", true};
  std::vector<HeaderFields> variants = {all,
                                        {"", "name-only", "", false},
                                        {"", "", "comment only", false},
                                        {"extra", "", "", false},
                                        {"", "", "", true},
                                        {"", "name", "comment", false}};
  for (const HeaderFields& fields : variants) {
    std::string blob = gzip_member(data, 6, fields);
    REQUIRE((static_cast<unsigned char>(blob[3]) & 0x1f) != 0); // some FLG bit is set
    for (std::size_t input_step : {std::size_t{1}, std::size_t{3}, std::size_t{1} << 20}) {
      INFO("FLG " << static_cast<int>(static_cast<unsigned char>(blob[3])) << ", input "
                  << input_step);
      auto out = decompress(blob, input_step, 65536);
      INFO((out ? std::string() : out.error().what()));
      REQUIRE(out);
      CHECK(*out == data);
    }
  }

  SECTION("a wrong header CRC is corrupt") {
    std::string blob = gzip_member(data, 6, all);
    // FHCRC sits right after the header fields: 10 + 2 + extra + name\0 + comment\0.
    std::size_t hcrc = 10 + 2 + all.extra.size() + all.name.size() + 1 + all.comment.size() + 1;
    blob[hcrc] = static_cast<char>(blob[hcrc] ^ 0x01);
    for (std::size_t input_step : {std::size_t{1}, std::size_t{1} << 20}) {
      require_corrupt(decompress(blob, input_step, 65536), "gzip: header CRC");
    }
  }
  SECTION("reserved FLG bits are corrupt") {
    std::string blob = gzip_member(data);
    blob[3] = static_cast<char>(blob[3] | 0x20);
    require_corrupt(decompress(blob, 1u << 20, 65536), "gzip: reserved header flags");
  }
  SECTION("a method other than deflate is corrupt") {
    std::string blob = gzip_member(data);
    blob[2] = 7;
    require_corrupt(decompress(blob, 1u << 20, 65536), "gzip: ");
  }
}

TEST_CASE("a wrong CRC-32 or ISIZE in the gzip trailer is corrupt", "[layer][decompress]") {
  std::string data = sample_bytes(200'000, 4);
  std::string blob = gzip_member(data);
  std::size_t crc = blob.size() - 8;
  std::size_t isize = blob.size() - 4;
  for (std::size_t offset : {crc, crc + 3, isize, isize + 3}) {
    for (std::size_t input_step : {std::size_t{1}, std::size_t{1} << 20}) {
      INFO("byte " << offset << ", input " << input_step);
      std::string damaged = blob;
      damaged[offset] = static_cast<char>(damaged[offset] ^ 0x40);
      require_corrupt(decompress(damaged, input_step, 65536), "gzip: CRC-32 or length mismatch");
      // In a later member too: the checks run for every member, not only the first.
      require_corrupt(decompress(gzip_member("first") + damaged, input_step, 65536),
                      "gzip: CRC-32 or length mismatch");
    }
  }
}

TEST_CASE("a gzip stream cut at any byte is corrupt, never short data", "[layer][decompress]") {
  HeaderFields fields{"ex", "n", "c", true};
  std::string data = sample_bytes(3000, 8) + random_bytes(300, 2);
  std::string blob = gzip_member(data, 6, fields);
  // One byte (0x1f) is not a gzip magic yet: the contract reads it as uncompressed.
  for (std::size_t cut = 2; cut < blob.size(); ++cut) {
    for (std::size_t input_step : {std::size_t{1}, std::size_t{1} << 20}) {
      INFO("cut at " << cut << " of " << blob.size() << ", input " << input_step);
      auto out = decompress(blob.substr(0, cut), input_step, 1000);
      REQUIRE_FALSE(out);
      CHECK(out.error().code() == Code::corrupt);
    }
  }
  // After a complete member, a cut anywhere in the next one (its first byte included) as well.
  std::string first = gzip_member("complete member");
  std::string two = first + blob;
  for (std::size_t cut = first.size() + 1; cut < two.size(); ++cut) {
    INFO("cut at " << cut << " of " << two.size());
    auto out = decompress(two.substr(0, cut), 1, 1000);
    REQUIRE_FALSE(out);
    CHECK(out.error().code() == Code::corrupt);
  }
  auto whole = decompress(two, 1, 1000);
  REQUIRE(whole);
  CHECK(*whole == "complete member" + data);
}

TEST_CASE("bytes after the last gzip member are corrupt with the documented messages",
          "[layer][decompress]") {
  std::string blob = gzip_member(sample_bytes(10'000, 6));
  for (std::size_t input_step : {std::size_t{1}, std::size_t{1} << 20}) {
    require_corrupt(decompress(blob + "garbage", input_step, 4096),
                    "gzip: unexpected data after the end of the gzip stream");
    require_corrupt(decompress(blob + std::string(1, '\0'), input_step, 4096),
                    "gzip: unexpected data after the end of the gzip stream");
    // A 0x1f that does not start a valid member: a bad header, not silently ignored.
    require_corrupt(decompress(blob + "\x1f\x8c" + std::string(10, 'x'), input_step, 4096),
                    "gzip: invalid member header");
    require_corrupt(decompress(blob + "\x1f", input_step, 4096), "gzip: the stream is truncated");
  }
}
