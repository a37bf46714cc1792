#include <minibuild/oci/digest.hpp>

#include <openssl/evp.h>

#include <array>
#include <new>
#include <optional>

namespace minibuild::oci {

namespace {

constexpr std::size_t k_max_quoted = 80;

// Error messages quote the offending input, but a hostile registry may send megabytes.
std::string quote(std::string_view text) {
  if (text.size() > k_max_quoted) {
    return "\"" + std::string(text.substr(0, k_max_quoted)) + "…\"";
  }
  return "\"" + std::string(text) + "\"";
}

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_lower_hex(char c) {
  return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

// algorithm-component := [a-z0-9]+ ; algorithm-separator := [+._-] (descriptor.md).
bool is_valid_algorithm(std::string_view algorithm) {
  if (algorithm.empty()) {
    return false;
  }
  bool component_started = false;
  for (char c : algorithm) {
    if (is_lower_alnum(c)) {
      component_started = true;
    } else if (c == '+' || c == '.' || c == '_' || c == '-') {
      if (!component_started) {
        return false; // leading or doubled separator
      }
      component_started = false;
    } else {
      return false;
    }
  }
  return component_started; // no trailing separator
}

bool is_valid_encoded(std::string_view encoded) {
  if (encoded.empty()) {
    return false;
  }
  for (char c : encoded) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '=' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Registered algorithms pin the encoding to lower-case hex of a fixed length.
std::optional<std::size_t> registered_hex_length(std::string_view algorithm) {
  if (algorithm == "sha256") {
    return 64;
  }
  if (algorithm == "sha384") {
    return 96;
  }
  if (algorithm == "sha512") {
    return 128;
  }
  return std::nullopt;
}

bool is_lower_hex_of_length(std::string_view hex, std::size_t length) {
  if (hex.size() != length) {
    return false;
  }
  for (char c : hex) {
    if (!is_lower_hex(c)) {
      return false;
    }
  }
  return true;
}

const EVP_MD* evp_for(DigestAlgorithm algorithm) {
  switch (algorithm) {
  case DigestAlgorithm::sha256:
    return EVP_sha256();
  case DigestAlgorithm::sha512:
    return EVP_sha512();
  }
  return EVP_sha256();
}

} // namespace

std::string_view algorithm_name(DigestAlgorithm algorithm) {
  switch (algorithm) {
  case DigestAlgorithm::sha256:
    return "sha256";
  case DigestAlgorithm::sha512:
    return "sha512";
  }
  return "sha256";
}

std::size_t hex_length(DigestAlgorithm algorithm) {
  switch (algorithm) {
  case DigestAlgorithm::sha256:
    return 64;
  case DigestAlgorithm::sha512:
    return 128;
  }
  return 64;
}

bool is_valid_digest_syntax(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  auto algorithm = text.substr(0, colon);
  auto encoded = text.substr(colon + 1);
  if (!is_valid_algorithm(algorithm) || !is_valid_encoded(encoded)) {
    return false;
  }
  if (auto length = registered_hex_length(algorithm)) {
    return is_lower_hex_of_length(encoded, *length);
  }
  return true;
}

Result<Digest> Digest::parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return fail(Code::corrupt, "invalid digest " + quote(text) + ": missing ':'");
  }
  auto algorithm = text.substr(0, colon);
  auto encoded = text.substr(colon + 1);
  if (!is_valid_algorithm(algorithm)) {
    return fail(Code::corrupt, "invalid digest " + quote(text) + ": bad algorithm name");
  }
  if (!is_valid_encoded(encoded)) {
    return fail(Code::corrupt, "invalid digest " + quote(text) + ": bad encoded part");
  }
  if (algorithm == "sha256") {
    return from_hex(DigestAlgorithm::sha256, encoded);
  }
  if (algorithm == "sha512") {
    return from_hex(DigestAlgorithm::sha512, encoded);
  }
  if (auto length = registered_hex_length(algorithm);
      length && !is_lower_hex_of_length(encoded, *length)) {
    return fail(Code::corrupt, "invalid digest " + quote(text) + ": expected " +
                                   std::to_string(*length) + " lower-case hex characters");
  }
  return fail(Code::unsupported, "unsupported digest algorithm \"" + std::string(algorithm) +
                                     "\" in " + quote(text) +
                                     " (minibuild verifies sha256 and "
                                     "sha512)");
}

Result<Digest> Digest::from_hex(DigestAlgorithm algorithm, std::string_view hex) {
  auto length = hex_length(algorithm);
  if (!is_lower_hex_of_length(hex, length)) {
    return fail(Code::corrupt,
                "invalid digest " +
                    quote(std::string(algorithm_name(algorithm)) + ":" + std::string(hex)) +
                    ": expected " + std::to_string(length) + " lower-case hex characters");
  }
  return Digest(algorithm, std::string(hex));
}

std::string Digest::to_string() const {
  if (m_hex.empty()) {
    return {};
  }
  std::string text(algorithm_name(m_algorithm));
  text += ':';
  text += m_hex;
  return text;
}

struct Hasher::Context {
  EVP_MD_CTX* ctx = nullptr;
  ~Context() { EVP_MD_CTX_free(ctx); }
};

Hasher::Hasher(DigestAlgorithm algorithm)
    : m_algorithm(algorithm), m_context(std::make_unique<Context>()) {
  m_context->ctx = EVP_MD_CTX_new();
  // Both fail only when OpenSSL cannot allocate (the built-in default provider always has
  // SHA-2), so they are reported like any other allocation failure.
  if (m_context->ctx == nullptr ||
      EVP_DigestInit_ex(m_context->ctx, evp_for(algorithm), nullptr) != 1) {
    throw std::bad_alloc();
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&& other) noexcept = default;
Hasher& Hasher::operator=(Hasher&& other) noexcept = default;

void Hasher::update(std::string_view bytes) {
  if (!bytes.empty()) {
    EVP_DigestUpdate(m_context->ctx, bytes.data(), bytes.size());
    m_bytes += bytes.size();
  }
}

void Hasher::update(std::span<const std::byte> bytes) {
  update(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Digest Hasher::finish() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> raw{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(m_context->ctx, raw.data(), &length);
  EVP_DigestInit_ex(m_context->ctx, evp_for(m_algorithm), nullptr);
  m_bytes = 0;

  static constexpr char k_hex_digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += k_hex_digits[raw[i] >> 4];
    hex += k_hex_digits[raw[i] & 0xf];
  }
  return Digest::from_hex(m_algorithm, hex).value();
}

Digest digest_of(DigestAlgorithm algorithm, std::string_view bytes) {
  Hasher hasher(algorithm);
  hasher.update(bytes);
  return hasher.finish();
}

Digest sha256_of(std::string_view bytes) {
  return digest_of(DigestAlgorithm::sha256, bytes);
}

} // namespace minibuild::oci
