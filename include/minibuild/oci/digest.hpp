// Content digests ("sha256:<hex>") and streaming hashers, per the OCI descriptor spec
// (descriptor.md, "Digests"): digest := algorithm ":" encoded.
//
// minibuild verifies every blob it reads, so a Digest holds only an algorithm it can compute:
// sha256 (the default everywhere) and sha512. Other algorithms that the grammar allows
// ("sha256+b64u:…", "multihash+base58:…") parse as Code::unsupported, not as corrupt input.
#pragma once

#include <minibuild/base/error.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace minibuild::oci {

/// The hash functions minibuild can compute and verify.
enum class DigestAlgorithm {
  sha256, ///< 64 lower-case hex characters
  sha512, ///< 128 lower-case hex characters
};

/// Name of an algorithm as written in a digest string ("sha256").
std::string_view algorithm_name(DigestAlgorithm algorithm);
/// Number of hex characters in an encoded digest of this algorithm (64 for sha256).
std::size_t hex_length(DigestAlgorithm algorithm);

/// A validated content digest. A default-constructed Digest is *empty* (no value yet, as in
/// Go's `digest.Digest("")`); every other Digest holds a supported algorithm and exactly
/// hex_length() lower-case hex characters. Ordered by algorithm, then hex; hashable.
class Digest {
public:
  Digest() = default;

  /// Parses and validates "algorithm:encoded". Grammar errors (no ':', bad algorithm
  /// characters, upper-case or wrong-length hex for a registered algorithm) give Code::corrupt;
  /// a well-formed digest of an algorithm minibuild cannot compute gives Code::unsupported.
  /// The message quotes the input (truncated when long).
  static Result<Digest> parse(std::string_view text);

  /// Builds a digest from an algorithm and its hex text; same validation as parse().
  static Result<Digest> from_hex(DigestAlgorithm algorithm, std::string_view hex);

  bool empty() const { return m_hex.empty(); }
  DigestAlgorithm algorithm() const { return m_algorithm; }
  /// The encoded part, lower-case hex ("e3b0c442…"); empty for an empty Digest.
  const std::string& hex() const { return m_hex; }
  /// "sha256:e3b0…"; "" for an empty Digest.
  std::string to_string() const;

  friend auto operator<=>(const Digest&, const Digest&) = default;
  friend bool operator==(const Digest&, const Digest&) = default;

private:
  Digest(DigestAlgorithm algorithm, std::string hex)
      : m_algorithm(algorithm), m_hex(std::move(hex)) {}

  DigestAlgorithm m_algorithm = DigestAlgorithm::sha256;
  std::string m_hex;
};

/// True when `text` follows the spec's digest grammar: algorithm
/// `[a-z0-9]+([+._-][a-z0-9]+)*`, ':', encoded `[a-zA-Z0-9=_-]+`, and for the registered
/// algorithms sha256/sha384/sha512 lower-case hex of the exact length. Unregistered algorithms
/// pass. This is the spec's notion of "valid"; Digest::parse() is stricter (computable only).
bool is_valid_digest_syntax(std::string_view text);

/// A streaming hash (OpenSSL EVP). Feed bytes with update(), get the Digest with finish().
/// Move-only (a moved-from Hasher may only be assigned to or destroyed); not thread-safe (one
/// hasher per stream).
class Hasher {
public:
  explicit Hasher(DigestAlgorithm algorithm = DigestAlgorithm::sha256);
  ~Hasher();
  Hasher(Hasher&& other) noexcept;
  Hasher& operator=(Hasher&& other) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(std::string_view bytes);
  void update(std::span<const std::byte> bytes);

  /// The digest of everything fed since construction or the last finish(); then starts over
  /// (byte_count() returns to 0), so one Hasher can hash several streams in turn.
  Digest finish();

  /// Bytes fed since construction or the last finish().
  std::uint64_t byte_count() const { return m_bytes; }
  DigestAlgorithm algorithm() const { return m_algorithm; }

private:
  struct Context;
  DigestAlgorithm m_algorithm;
  std::unique_ptr<Context> m_context;
  std::uint64_t m_bytes = 0;
};

/// The SHA-256 hasher used for blobs, manifests, configs and diffIDs.
class Sha256Hasher : public Hasher {
public:
  Sha256Hasher() : Hasher(DigestAlgorithm::sha256) {}
};

/// sha256 of a whole buffer: `sha256_of("")` is "sha256:e3b0c442…b855".
Digest sha256_of(std::string_view bytes);
/// The digest of a whole buffer with any supported algorithm.
Digest digest_of(DigestAlgorithm algorithm, std::string_view bytes);

} // namespace minibuild::oci

/// Digests are keys of blob maps and sets.
template <>
struct std::hash<minibuild::oci::Digest> {
  std::size_t operator()(const minibuild::oci::Digest& digest) const noexcept {
    return std::hash<std::string>()(digest.hex()) ^ static_cast<std::size_t>(digest.algorithm());
  }
};
