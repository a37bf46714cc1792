#include <minibuild/oci/byte_source.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <memory>
#include <string>

using namespace minibuild;
using namespace minibuild::oci;

namespace {

/// Hands out at most `chunk` bytes per read, to exercise partial reads, and counts reads.
class ChunkedSource : public ByteSource {
public:
  ChunkedSource(std::string bytes, std::size_t chunk) : m_bytes(std::move(bytes)), m_chunk(chunk) {}
  Result<std::size_t> read(std::span<char> buffer) override {
    ++reads;
    std::size_t count = std::min({buffer.size(), m_chunk, m_bytes.size() - m_offset});
    std::copy_n(m_bytes.data() + m_offset, count, buffer.data());
    m_offset += count;
    return count;
  }
  int reads = 0;

private:
  std::string m_bytes;
  std::size_t m_chunk;
  std::size_t m_offset = 0;
};

class FailingSource : public ByteSource {
public:
  Result<std::size_t> read(std::span<char>) override {
    return fail(Code::network, "connection reset");
  }
};

/// Reads a VerifiedSource to its end with a small buffer; returns what it read or the error.
Result<std::string> drain(VerifiedSource& source, std::size_t buffer_size = 7) {
  std::string out;
  std::vector<char> buffer(buffer_size);
  while (true) {
    MB_TRY_ASSIGN(std::size_t count, source.read(buffer));
    if (count == 0) {
      return out;
    }
    out.append(buffer.data(), count);
  }
}

const std::string k_content = "the quick brown fox jumps over the lazy dog";

VerifiedSource verified(std::string actual, const std::string& expected, std::size_t chunk = 5) {
  return VerifiedSource(std::make_unique<ChunkedSource>(std::move(actual), chunk),
                        sha256_of(expected), expected.size());
}

} // namespace

TEST_CASE("VerifiedSource passes matching content through and confirms at end of stream", "[oci]") {
  auto source = verified(k_content, k_content);
  auto read = drain(source);
  REQUIRE(read);
  CHECK(*read == k_content);
  CHECK(source.verified());
  CHECK(source.bytes_read() == k_content.size());
  std::array<char, 4> buffer{};
  CHECK(source.read(buffer).value() == 0); // stays at end
}

TEST_CASE("VerifiedSource verifies an empty blob", "[oci]") {
  auto source = verified("", "");
  auto read = drain(source);
  REQUIRE(read);
  CHECK(read->empty());
  CHECK(source.verified());
}

TEST_CASE("VerifiedSource catches a short stream", "[oci]") {
  auto source = verified(k_content.substr(0, 10), k_content);
  auto read = drain(source);
  REQUIRE_FALSE(read);
  CHECK(read.error().code() == Code::corrupt);
  CHECK(read.error().message().find("size mismatch: expected 43 bytes, got 10") !=
        std::string::npos);
  CHECK_FALSE(source.verified());
}

TEST_CASE("VerifiedSource catches a long stream without handing out the excess", "[oci]") {
  for (std::size_t buffer_size : {1, 7, 43, 44, 1000}) {
    INFO(buffer_size);
    auto source = verified(k_content + "!", k_content, 100);
    std::string seen;
    std::vector<char> buffer(buffer_size);
    Result<std::size_t> count = std::size_t{0};
    while ((count = source.read(buffer)) && *count > 0) {
      seen.append(buffer.data(), *count);
    }
    REQUIRE_FALSE(count);
    CHECK(count.error().code() == Code::corrupt);
    CHECK(count.error().message().find("got more") != std::string::npos);
    CHECK(seen.size() <= k_content.size());
    // Errors are sticky.
    CHECK_FALSE(source.read(buffer));
  }
}

TEST_CASE("VerifiedSource catches a flipped byte, naming both digests", "[oci]") {
  std::string flipped = k_content;
  flipped[20] = static_cast<char>(flipped[20] ^ 0x01);
  auto source = verified(flipped, k_content);
  auto read = drain(source);
  REQUIRE_FALSE(read);
  CHECK(read.error().code() == Code::corrupt);
  const auto& message = read.error().message();
  CHECK(message.find("digest mismatch") != std::string::npos);
  CHECK(message.find("expected " + sha256_of(k_content).to_string()) != std::string::npos);
  CHECK(message.find("got " + sha256_of(flipped).to_string()) != std::string::npos);
}

TEST_CASE("VerifiedSource passes inner errors up with context", "[oci]") {
  VerifiedSource source(std::make_unique<FailingSource>(), sha256_of("x"), 1);
  std::array<char, 8> buffer{};
  auto count = source.read(buffer);
  REQUIRE_FALSE(count);
  CHECK(count.error().code() == Code::network);
  CHECK(count.error().what() == "read blob " + sha256_of("x").to_string() + ": connection reset");
}

TEST_CASE("read_all reads to the end and enforces its limit", "[oci]") {
  ChunkedSource source(k_content, 3);
  auto all = read_all(source, 1000);
  REQUIRE(all);
  CHECK(*all == k_content);

  StringSource big(std::string(100, 'x'));
  auto limited = read_all(big, 99);
  REQUIRE_FALSE(limited);
  CHECK(limited.error().code() == Code::corrupt);

  StringSource exact(std::string(99, 'x'));
  CHECK(read_all(exact, 99).value().size() == 99);
}
