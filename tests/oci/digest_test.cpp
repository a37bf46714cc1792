#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

using namespace minibuild;
using namespace minibuild::oci;

namespace {

const std::string k_sha256_empty =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string k_sha256_abc =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string k_sha512_abc =
    "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c2"
    "3a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

} // namespace

TEST_CASE("sha256 known answers: empty string, abc, the OCI empty JSON", "[oci]") {
  CHECK(sha256_of("").to_string() == k_sha256_empty);
  CHECK(sha256_of("abc").to_string() == k_sha256_abc);
  CHECK(sha256_of("{}").to_string() == k_oci_empty_json_digest);
  CHECK(digest_of(DigestAlgorithm::sha512, "abc").to_string() == k_sha512_abc);
  CHECK(digest_of(DigestAlgorithm::sha512, "").hex().substr(0, 16) == "cf83e1357eefb8bd");
}

TEST_CASE("streaming in pieces equals hashing at once, and finish() starts over", "[oci]") {
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    text += static_cast<char>('a' + i % 26);
  }
  Sha256Hasher hasher;
  for (std::size_t offset = 0; offset < text.size(); offset += 37) {
    hasher.update(std::string_view(text).substr(offset, 37));
  }
  CHECK(hasher.byte_count() == text.size());
  CHECK(hasher.finish() == sha256_of(text));

  CHECK(hasher.byte_count() == 0);
  std::vector<std::byte> bytes = {std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
  hasher.update(std::span<const std::byte>(bytes));
  CHECK(hasher.byte_count() == 3);
  CHECK(hasher.finish().to_string() == k_sha256_abc);

  Hasher moved(DigestAlgorithm::sha512);
  moved.update("ab");
  Hasher target = std::move(moved);
  target.update("c");
  CHECK(target.finish().to_string() == k_sha512_abc);
}

TEST_CASE("Digest::parse accepts sha256 and sha512 and round-trips", "[oci]") {
  auto digest = Digest::parse(k_sha256_abc);
  REQUIRE(digest);
  CHECK(digest->algorithm() == DigestAlgorithm::sha256);
  CHECK(digest->hex().size() == 64);
  CHECK(digest->to_string() == k_sha256_abc);
  auto sha512 = Digest::parse(k_sha512_abc);
  REQUIRE(sha512);
  CHECK(sha512->algorithm() == DigestAlgorithm::sha512);
  CHECK(Digest().empty());
  CHECK(Digest().to_string().empty());
}

TEST_CASE("Digest::parse rejects malformed digests as corrupt, naming the input", "[oci]") {
  const std::string hex64(64, 'a');
  const std::vector<std::string> bad = {
      "",
      "sha256",                         // no ':'
      ":" + hex64,                      // no algorithm
      "sha256:",                        // no hash
      "SHA256:" + hex64,                // upper-case algorithm
      "sha256:" + std::string(64, 'A'), // upper-case hex for a registered algorithm
      "sha256:" + std::string(63, 'a'), // too short
      "sha256:" + std::string(65, 'a'), // too long
      "sha256:" + std::string(63, 'a') + "g",
      "sha256+:" + hex64,               // trailing separator
      "sha256+foo+-b:" + hex64,         // doubled separator
      "sha512:" + hex64,                // wrong length for sha512
      "sha384:" + std::string(95, 'a'), // registered, wrong length
      "sha256:" + hex64 + "\n",
  };
  for (const auto& text : bad) {
    INFO(text);
    auto digest = Digest::parse(text);
    REQUIRE_FALSE(digest);
    CHECK(digest.error().code() == Code::corrupt);
    CHECK(digest.error().message().find("invalid digest") != std::string::npos);
  }
}

TEST_CASE("well-formed digests of other algorithms are unsupported, not corrupt", "[oci]") {
  const std::string hex64(64, 'a');
  const std::vector<std::string> texts = {
      "sha384:" + std::string(96, 'a'), "sha256+b64u:LCa0a2j_xo_5m0U8",
      "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", "blake3:" + hex64};
  for (const auto& text : texts) {
    INFO(text);
    auto digest = Digest::parse(text);
    REQUIRE_FALSE(digest);
    CHECK(digest.error().code() == Code::unsupported);
    CHECK(is_valid_digest_syntax(text));
  }
}

TEST_CASE("is_valid_digest_syntax follows the spec grammar", "[oci]") {
  const std::string hex64(64, 'a');
  CHECK(is_valid_digest_syntax("sha256:" + hex64));
  CHECK(is_valid_digest_syntax("sha256.foo-bar:" + hex64));
  CHECK(is_valid_digest_syntax(
      "sha256+b64u.unknownlength:LCa0a2j_xo_5m0U8HTBBNBNCL=")); // encoded may use = _ -
  CHECK_FALSE(is_valid_digest_syntax("sha256:" + std::string(64, 'A')));
  CHECK_FALSE(is_valid_digest_syntax("sha256+foo+-b:" + hex64));
  CHECK_FALSE(is_valid_digest_syntax("sha256"));
  CHECK_FALSE(is_valid_digest_syntax("sha256:abc/def"));
}

TEST_CASE("digests compare by algorithm then hex and work as hash keys", "[oci]") {
  auto a = sha256_of("a");
  auto b = sha256_of("b");
  CHECK(a == sha256_of("a"));
  CHECK(a != b);
  CHECK((a < b) == (a.hex() < b.hex()));
  CHECK(sha256_of("x") < digest_of(DigestAlgorithm::sha512, "x"));
  std::unordered_set<Digest> set = {a, b, sha256_of("a")};
  CHECK(set.size() == 2);
  CHECK(set.count(b) == 1);
}
