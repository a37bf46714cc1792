// The compression pipeline: byte-identical output for every thread count, streams that zlib,
// libzstd and gzip(1) decode, and digests that match the bytes.
#include "layer/encoder.hpp"
#include "layer_test_support.hpp"

#include <minibuild/layer/decompress.hpp>

#include <catch2/catch.hpp>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>

using namespace minibuild;
using namespace layer_test;

namespace {

// Feeds `data` to the encoder in uneven pieces, as the tar writer does.
Result<layer::EncodedStream> encode(const std::string& data, oci::Compression compression,
                                    unsigned threads, std::string& blob, int level = 6) {
  layer::EncoderOptions options;
  options.compression = compression;
  options.level = compression == oci::Compression::zstd ? 3 : level;
  options.threads = threads;
  layer::StringSink sink;
  auto result = layer::encode_stream(
      options,
      [&](layer::ByteSink& out) -> Result<void> {
        std::size_t offset = 0;
        std::size_t piece = 1;
        while (offset < data.size()) {
          std::size_t length = std::min(piece, data.size() - offset);
          MB_TRY(out.write(std::span<const char>(data.data() + offset, length)));
          offset += length;
          piece = piece * 3 + 7; // 1, 10, 37, ... up to megabytes
          if (piece > 3 * 1024 * 1024) {
            piece = 1000;
          }
        }
        return {};
      },
      sink);
  blob = sink.take();
  return result;
}

std::string gunzip_with_zlib(const std::string& blob) {
  z_stream stream{};
  REQUIRE(inflateInit2(&stream, 15 + 16) == Z_OK);
  std::string out;
  char buffer[65536];
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(blob.data()));
  stream.avail_in = static_cast<uInt>(blob.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    rc = inflate(&stream, Z_NO_FLUSH);
    REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
    out.append(buffer, sizeof(buffer) - stream.avail_out);
  }
  CHECK(stream.avail_in == 0); // one member, nothing after it
  inflateEnd(&stream);
  return out;
}

std::string unzstd_with_libzstd(const std::string& blob) {
  ZSTD_DCtx* context = ZSTD_createDCtx();
  std::string out;
  std::string buffer(ZSTD_DStreamOutSize(), '\0');
  ZSTD_inBuffer in{blob.data(), blob.size(), 0};
  std::size_t rc = 1;
  while (in.pos < in.size || rc != 0) {
    ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
    rc = ZSTD_decompressStream(context, &o, &in);
    REQUIRE(!ZSTD_isError(rc));
    out.append(buffer.data(), o.pos);
    if (o.pos == 0 && in.pos == in.size) {
      break;
    }
  }
  CHECK(rc == 0);
  ZSTD_freeDCtx(context);
  return out;
}

std::string decompress_with_source(const std::string& blob) {
  oci::StringSource inner(blob);
  layer::DecompressingSource source(inner);
  auto all = oci::read_all(source, 1u << 30);
  INFO((all ? std::string() : all.error().what()));
  REQUIRE(all);
  return *all;
}

} // namespace

TEST_CASE("gzip output is byte-identical for every thread count and decodes with zlib",
          "[layer][encoder]") {
  // 3.3 MB: 26 blocks of 128 KiB plus a partial one.
  std::string data = sample_bytes(3'300'000, 7);
  std::string reference;
  auto first = encode(data, oci::Compression::gzip, 1, reference);
  REQUIRE(first);
  for (unsigned threads : {2u, 3u, 8u}) {
    std::string blob;
    auto result = encode(data, oci::Compression::gzip, threads, blob);
    REQUIRE(result);
    CHECK(blob == reference);
    CHECK(result->compressed_digest == first->compressed_digest);
  }
  CHECK(gunzip_with_zlib(reference) == data);
  CHECK(decompress_with_source(reference) == data);
  CHECK(first->uncompressed_digest == oci::sha256_of(data));
  CHECK(first->compressed_digest == oci::sha256_of(reference));
  CHECK(first->uncompressed_size == data.size());
  CHECK(first->compressed_size == reference.size());
  CHECK(reference.size() < data.size() / 2); // the dictionary priming keeps the ratio
  // RFC 1952 header: magic, deflate, no flags, MTIME 0, OS 3.
  CHECK(reference.substr(0, 8) == std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8));
  CHECK(reference[9] == '\x03');
}

TEST_CASE("gzip blocks end exactly on a block boundary without an extra block",
          "[layer][encoder]") {
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, layer::k_gzip_block_size,
                           2 * layer::k_gzip_block_size, 2 * layer::k_gzip_block_size + 1}) {
    std::string data = sample_bytes(size, static_cast<std::uint32_t>(size));
    std::string one;
    std::string four;
    REQUIRE(encode(data, oci::Compression::gzip, 1, one));
    REQUIRE(encode(data, oci::Compression::gzip, 4, four));
    CHECK(one == four);
    CHECK(gunzip_with_zlib(one) == data);
  }
}

TEST_CASE("gzip output passes gzip -t", "[layer][encoder]") {
  if (std::system("command -v gzip >/dev/null 2>&1") != 0) {
    WARN("gzip(1) is not installed: skipping the external check");
    return;
  }
  TempDir dir;
  std::string blob;
  REQUIRE(encode(sample_bytes(1'000'000, 3), oci::Compression::gzip, 2, blob, 9));
  write_file(dir / "x.gz", blob);
  CHECK(std::system(("gzip -t '" + (dir / "x.gz") + "'").c_str()) == 0);
  CHECK(blob[8] == '\x02'); // XFL: maximum compression
}

TEST_CASE("zstd output does not depend on the thread count and decodes with libzstd",
          "[layer][encoder]") {
  // 40 MB: several zstd jobs at level 3, so workers really run in parallel.
  std::string data = sample_bytes(40'000'000, 11);
  std::string reference;
  auto first = encode(data, oci::Compression::zstd, 1, reference);
  REQUIRE(first);
  for (unsigned threads : {2u, 4u}) {
    std::string blob;
    REQUIRE(encode(data, oci::Compression::zstd, threads, blob));
    CHECK(blob == reference);
  }
  CHECK(unzstd_with_libzstd(reference) == data);
  CHECK(decompress_with_source(reference) == data);
  CHECK(first->uncompressed_digest == oci::sha256_of(data));
  CHECK(first->compressed_digest == oci::sha256_of(reference));
}

TEST_CASE("a small zstd stream is also identical across thread counts", "[layer][encoder]") {
  // The stream never starts with ZSTD_e_end, which would take libzstd's single-shot path.
  std::string data = sample_bytes(5000, 5);
  std::string one;
  std::string three;
  REQUIRE(encode(data, oci::Compression::zstd, 1, one));
  REQUIRE(encode(data, oci::Compression::zstd, 3, three));
  CHECK(one == three);
  CHECK(unzstd_with_libzstd(one) == data);
}

TEST_CASE("uncompressed streams have digest == diffID", "[layer][encoder]") {
  std::string data = sample_bytes(2'500'000, 1);
  std::string blob;
  auto result = encode(data, oci::Compression::none, 2, blob);
  REQUIRE(result);
  CHECK(blob == data);
  CHECK(result->compressed_digest == result->uncompressed_digest);
  CHECK(result->uncompressed_digest == oci::sha256_of(data));
}

TEST_CASE("a failing sink stops the producer and returns the sink's error", "[layer][encoder]") {
  class FailingSink : public layer::ByteSink {
  public:
    Result<void> write(std::span<const char> bytes) override {
      m_written += bytes.size();
      if (m_written > 300'000) {
        return fail(Code::io, "disk full");
      }
      return {};
    }

  private:
    std::size_t m_written = 0;
  };
  for (auto compression :
       {oci::Compression::gzip, oci::Compression::zstd, oci::Compression::none}) {
    layer::EncoderOptions options;
    options.compression = compression;
    options.level = compression == oci::Compression::zstd ? 3 : 6;
    options.threads = 2;
    std::size_t produced = 0;
    FailingSink sink;
    auto result = layer::encode_stream(
        options,
        [&](layer::ByteSink& out) -> Result<void> {
          std::string chunk = sample_bytes(1 << 20, 9);
          for (int i = 0; i < 200; ++i) { // 200 MB if nothing stopped it
            MB_TRY(out.write(std::span<const char>(chunk.data(), chunk.size())));
            produced += chunk.size();
          }
          return {};
        },
        sink);
    REQUIRE_FALSE(result);
    CHECK(result.error().message() == "disk full");
    CHECK(produced < 100u * (1 << 20));
  }
}

TEST_CASE("a producer error is returned as is", "[layer][encoder]") {
  layer::EncoderOptions options;
  layer::StringSink sink;
  auto result = layer::encode_stream(
      options,
      [](layer::ByteSink& out) -> Result<void> {
        MB_TRY(out.write(std::span<const char>("abc", 3)));
        return fail(Code::io, "read \"x\": Input/output error");
      },
      sink);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::io);
  CHECK(result.error().message() == "read \"x\": Input/output error");
}

TEST_CASE("compression levels are checked", "[layer][encoder]") {
  CHECK(*layer::resolve_level(oci::Compression::gzip, std::nullopt) == 6);
  CHECK(*layer::resolve_level(oci::Compression::zstd, std::nullopt) == 3);
  CHECK(*layer::resolve_level(oci::Compression::gzip, 9) == 9);
  CHECK(layer::resolve_level(oci::Compression::gzip, 0).error().code() == Code::usage);
  CHECK(layer::resolve_level(oci::Compression::zstd, 20).error().code() == Code::usage);
  CHECK(layer::resolve_threads(3) == 3);
  CHECK(layer::resolve_threads(0) >= 1);
}

TEST_CASE("compression is detected from the magic", "[layer][decompress]") {
  using oci::Compression;
  CHECK(layer::detect_compression(std::span<const char>("\x1f\x8b\x08", 3)) == Compression::gzip);
  CHECK(layer::detect_compression(std::span<const char>("\x28\xb5\x2f\xfd", 4)) ==
        Compression::zstd);
  CHECK(layer::detect_compression(std::span<const char>("\x50\x2a\x4d\x18", 4)) ==
        Compression::zstd);
  CHECK(layer::detect_compression(std::span<const char>("etc/", 4)) == Compression::none);
  CHECK(layer::detect_compression(std::span<const char>("", 0)) == Compression::none);
}

TEST_CASE("concatenated gzip members read as one stream", "[layer][decompress]") {
  std::string a;
  std::string b;
  REQUIRE(encode("first part ", oci::Compression::gzip, 1, a));
  REQUIRE(encode("second part", oci::Compression::gzip, 1, b));
  CHECK(decompress_with_source(a + b) == "first part second part");
}

TEST_CASE("truncated or trailing-garbage streams are corrupt", "[layer][decompress]") {
  std::string data = sample_bytes(400'000, 2);
  std::string gz;
  std::string zst;
  REQUIRE(encode(data, oci::Compression::gzip, 2, gz));
  REQUIRE(encode(data, oci::Compression::zstd, 2, zst));
  auto read = [](const std::string& blob) {
    oci::StringSource inner(blob);
    layer::DecompressingSource source(inner);
    return oci::read_all(source, 1u << 30);
  };
  auto truncated_gzip = read(gz.substr(0, gz.size() - 100));
  REQUIRE_FALSE(truncated_gzip);
  CHECK(truncated_gzip.error().code() == Code::corrupt);
  auto garbage = read(gz + "garbage");
  REQUIRE_FALSE(garbage);
  CHECK(garbage.error().code() == Code::corrupt);
  auto truncated_zstd = read(zst.substr(0, zst.size() - 10));
  REQUIRE_FALSE(truncated_zstd);
  CHECK(truncated_zstd.error().code() == Code::corrupt);
  std::string flipped = gz;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x55);
  auto bad = read(flipped);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Code::corrupt);
}
