// RegistryClient: the distribution API over an HttpTransport. The transport does one exchange;
// everything a registry conversation needs on top (scheme, auth, redirects, retries, resume,
// upload styles) lives here. See client.hpp for the contract.
#include "text.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/client.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace minibuild::registry {
namespace {

using text::lower;
using text::trim;

using std::chrono::milliseconds;

constexpr std::size_t k_max_manifest = 4 << 20;
constexpr int k_max_redirects = 5;
constexpr std::size_t k_max_detail = 200;
constexpr std::size_t k_copy_buffer = 64 * 1024;

const std::string k_accept =
    std::string(oci::k_oci_index) + ", " + std::string(oci::k_oci_manifest) + ", " +
    std::string(oci::k_docker_manifest_list) + ", " + std::string(oci::k_docker_manifest);
constexpr std::string_view k_octet_stream = "application/octet-stream";

// --- small text helpers --------------------------------------------------------------------

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  text = trim(text);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// "application/json; charset=utf-8" → "application/json".
std::string bare_media_type(std::string_view content_type) {
  return lower(trim(content_type.substr(0, content_type.find(';'))));
}

// Server text in a message: one line, printable, bounded.
std::string printable(std::string_view text, std::size_t limit = k_max_detail) {
  std::string out;
  for (char c : text.substr(0, text.find_first_of("\r\n"))) {
    if (out.size() >= limit) {
      out += "...";
      break;
    }
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  }
  return out;
}

std::string_view reason_phrase(int status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 413:
    return "Content Too Large";
  case 416:
    return "Range Not Satisfiable";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return {};
  }
}

// "503 Service Unavailable": HTTP/2 has no reason phrase on the wire, so the transport cannot
// hand one over; the common ones make messages and retry lines readable.
std::string status_text(int status) {
  std::string text = std::to_string(status);
  if (const std::string_view phrase = reason_phrase(status); !phrase.empty()) {
    text += ' ';
    text += phrase;
  }
  return text;
}

// Query values: unreserved characters stay, everything else (':' of a digest, '/' of a
// repository) is percent-encoded, as Go's url.Values does.
std::string query_escape(std::string_view text) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += k_hex[u >> 4];
      out += k_hex[u & 15];
    }
  }
  return out;
}

// --- URLs ----------------------------------------------------------------------------------

struct UrlOrigin {
  std::string scheme;
  std::string host;
  std::string port;
  bool operator==(const UrlOrigin&) const = default;
};

// "scheme://" at the start of `url`, with a valid scheme name; npos otherwise.
std::size_t scheme_end(std::string_view url) {
  const std::size_t colon = url.find("://");
  if (colon == std::string_view::npos || colon == 0) {
    return std::string_view::npos;
  }
  const bool valid =
      std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
      });
  return valid ? colon : std::string_view::npos;
}

// "https://host:port" of an absolute URL (the part before the path).
std::string_view url_prefix(std::string_view url) {
  const std::size_t colon = scheme_end(url);
  if (colon == std::string_view::npos) {
    return {};
  }
  const std::size_t end = url.find_first_of("/?#", colon + 3);
  return url.substr(0, end);
}

// The (scheme, host, port) triple of an absolute URL, with the default port made explicit so
// "https://h" and "https://h:443" compare equal: Authorization and the registry's TLS settings
// go to exactly one origin.
std::optional<UrlOrigin> url_origin(std::string_view url) {
  const std::size_t colon = scheme_end(url);
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  UrlOrigin origin;
  origin.scheme = lower(url.substr(0, colon));
  std::string_view authority = url_prefix(url).substr(colon + 3);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  // "[::1]:5000": the port follows the bracket, not the last colon of the address.
  const std::size_t bracket = authority.rfind(']');
  const std::size_t port_colon = authority.rfind(':');
  if (port_colon != std::string_view::npos &&
      (bracket == std::string_view::npos || port_colon > bracket)) {
    origin.host = lower(authority.substr(0, port_colon));
    origin.port = std::string(authority.substr(port_colon + 1));
  } else {
    origin.host = lower(authority);
  }
  if (origin.port.empty()) {
    origin.port = origin.scheme == "http" ? "80" : origin.scheme == "https" ? "443" : "";
  }
  return origin;
}

// The host of a URL, for messages: redirect targets are often pre-signed storage URLs whose
// query string is a credential, so messages name only the host.
std::string url_host(std::string_view url) {
  const auto origin = url_origin(url);
  return origin ? origin->host : std::string("?");
}

// Resolves a Location header against the URL it answered (RFC 3986 §5.2, without dot-segment
// removal: registries send absolute URLs or absolute paths, and upload Locations often are
// "/v2/<name>/blobs/uploads/<uuid>?_state=…").
std::string resolve_location(std::string_view base, std::string_view location) {
  location = trim(location);
  if (scheme_end(location) != std::string_view::npos) {
    return std::string(location);
  }
  if (location.starts_with("//")) {
    return std::string(base.substr(0, scheme_end(base) + 1)) + std::string(location);
  }
  const std::string_view prefix = url_prefix(base);
  if (location.starts_with('/')) {
    return std::string(prefix) + std::string(location);
  }
  std::string_view path = base.substr(prefix.size());
  path = path.substr(0, path.find_first_of("?#"));
  if (location.starts_with('?')) {
    return std::string(prefix) + std::string(path) + std::string(location);
  }
  const std::size_t slash = path.rfind('/');
  const std::string_view directory =
      slash == std::string_view::npos ? std::string_view("/") : path.substr(0, slash + 1);
  return std::string(prefix) + std::string(directory) + std::string(location);
}

// Appends name=value to a URL that may already carry a query: upload Locations carry
// distribution's opaque _state, which must be sent back unchanged.
std::string with_query(std::string_view url, std::string_view name, std::string_view value) {
  const std::string_view without_fragment = url.substr(0, url.find('#'));
  const char separator = without_fragment.find('?') == std::string_view::npos ? '?' : '&';
  return std::string(without_fragment) + separator + std::string(name) + '=' + query_escape(value);
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// --- registry error answers ----------------------------------------------------------------

// The `code` fields of the registry's {"errors": [...]} body (distribution spec, "Error Codes").
std::vector<std::string> error_codes(const HttpResponse& response) {
  std::vector<std::string> codes;
  const auto json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return codes;
  }
  const auto errors = json.find("errors");
  if (errors == json.end() || !errors->is_array()) {
    return codes;
  }
  for (const auto& entry : *errors) {
    if (entry.is_object()) {
      if (const auto code = entry.find("code"); code != entry.end() && code->is_string()) {
        codes.push_back(code->get<std::string>());
      }
    }
  }
  return codes;
}

// Why one attempt failed, and whether another attempt may do better.
struct Failure {
  Error error;
  bool retryable = false;
  std::optional<milliseconds> retry_after;
  /// Short cause for the retry log line ("503 Service Unavailable").
  std::string reason;
  /// The registry refused this upload style: switch style (not a retry).
  bool switch_style = false;
};

template <typename T>
using Attempt = tl::expected<T, Failure>;

tl::unexpected<Failure> transport_failure(Error error, bool protocol_error) {
  const bool retryable = !protocol_error && is_retryable_error(error);
  std::string reason = printable(error.message());
  return tl::unexpected<Failure>(Failure{std::move(error), retryable, std::nullopt, reason});
}

// A failure that no further attempt can fix (a sink's refusal, a protocol violation).
tl::unexpected<Failure> final_failure(Error error) {
  std::string reason = printable(error.message());
  return tl::unexpected<Failure>(Failure{std::move(error), false, std::nullopt, reason});
}

// An answer with an unexpected status. `action` ("pull", "push") and `repository` say what was
// asked, for auth errors (an empty repository: the registry itself, as `ping` asks);
// `from_registry` whether the registry answered rather than the storage host a redirect led to
// (whose 403 means an expired signed URL, not our credentials).
tl::unexpected<Failure> status_failure(const HttpResponse& response, std::string_view domain,
                                       std::string_view action, std::string_view repository,
                                       bool from_registry, std::string_view final_url) {
  const int status = response.status;
  std::string text = describe_error_response(response);
  Code code = Code::network;
  const std::vector<std::string> codes = error_codes(response);
  const bool unknown = std::any_of(codes.begin(), codes.end(), [](const std::string& c) {
    return c == "MANIFEST_UNKNOWN" || c == "BLOB_UNKNOWN" || c == "NAME_UNKNOWN";
  });
  if (status == 404 || (from_registry && unknown)) {
    code = Code::not_found;
  } else if (from_registry && (status == 401 || status == 403)) {
    // A second 401 (the Authenticator already refreshed) or a 403: the credentials, or the
    // anonymous token, do not cover this. Docker Hub also answers so for a repository that
    // does not exist, hence the two explanations.
    code = Code::auth;
    if (repository.empty()) {
      text = std::string(domain) + " refused the credentials (" + text + ")";
    } else {
      text = std::string(domain) + " refused " + std::string(action) + " access to " +
             std::string(repository) + " (" + text +
             "): the repository does not exist or the credentials do not allow it";
    }
  }
  if (!from_registry) {
    text = "storage host " + url_host(final_url) + " answered " + text;
  }
  Failure failure{Error(code, std::move(text)), is_retryable_status(status), std::nullopt,
                  status_text(status)};
  if (const auto value = response.headers.get("Retry-After")) {
    failure.retry_after = parse_retry_after(*value, std::chrono::system_clock::now());
  }
  return tl::unexpected<Failure>(std::move(failure));
}

// Runs `attempt` until it succeeds, fails for good or max_attempts ran out, sleeping between
// attempts as retry.hpp says. Every error leaves with `what` as its context.
template <typename T, typename Fn>
Result<T> with_retries(const ClientOptions& options, const std::string& what, Fn&& attempt) {
  const int max_attempts = std::max(1, options.retry.max_attempts);
  for (int number = 1;; ++number) {
    Attempt<T> result = attempt(number);
    if (result) {
      if constexpr (std::is_void_v<T>) {
        return {};
      } else {
        return std::move(*result);
      }
    }
    Failure failure = std::move(result).error();
    if (!failure.retryable || number >= max_attempts) {
      if (number > 1) {
        failure.error.wrap("after " + std::to_string(number) + " attempts");
      }
      return fail(std::move(failure.error).wrap(what));
    }
    const milliseconds delay =
        retry_delay(options.retry, number, failure.retry_after, options.random_unit());
    if (options.log) {
      options.log("retrying " + what + " after " + failure.reason + " (attempt " +
                  std::to_string(number + 1) + "/" + std::to_string(max_attempts) + ")");
    }
    options.sleep(delay);
  }
}

double default_random_unit() {
  // One engine per thread: parallel downloads draw jitter without sharing state.
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

// Checks a Docker-Content-Digest header, when there is one, against the digest of what was
// sent or received.
Result<void> check_content_digest(const HttpResponse& response, const oci::Digest& expected) {
  const auto header = response.headers.get("Docker-Content-Digest");
  if (!header || trim(*header).empty()) {
    return {};
  }
  auto answered = oci::Digest::parse(trim(*header));
  if (!answered) {
    return fail(Code::corrupt, "the registry answered an invalid Docker-Content-Digest \"" +
                                   printable(*header) + "\"");
  }
  // A digest of another algorithm cannot be checked without the bytes; registries answer in
  // the algorithm they were given, so this does not happen in practice.
  if (answered->algorithm() == expected.algorithm() && *answered != expected) {
    return fail(Code::corrupt, "the registry answered Docker-Content-Digest " +
                                   answered->to_string() + ", expected " + expected.to_string());
  }
  return {};
}

// --- body sinks ----------------------------------------------------------------------------

// Collects a small body (a manifest), refusing more than `limit` bytes.
class BoundedBodySink final : public BodySink {
public:
  explicit BoundedBodySink(std::size_t limit) : m_limit(limit) {}

  Result<void> begin(const HttpResponse& response) override {
    m_bytes.clear();
    if (const auto length = response.headers.get("Content-Length")) {
      if (const auto value = parse_u64(*length); value && *value > m_limit) {
        return fail(too_large());
      }
    }
    return {};
  }

  Result<void> write(std::span<const char> bytes) override {
    if (bytes.size() > m_limit - m_bytes.size()) {
      return fail(too_large());
    }
    m_bytes.append(bytes.data(), bytes.size());
    return {};
  }

  std::string take() { return std::move(m_bytes); }

private:
  Error too_large() const {
    return Error(Code::corrupt,
                 "the manifest is larger than " + std::to_string(m_limit >> 20) + " MiB");
  }

  std::size_t m_limit;
  std::string m_bytes;
};

// Forwards a blob body to the caller's ByteSink across attempts: counts what was delivered,
// skips what a resumed 200 answer repeats, refuses bytes beyond the descriptor's size.
class BlobBodySink final : public BodySink {
public:
  BlobBodySink(layer::ByteSink& out, std::uint64_t size, const TransferProgress& progress)
      : m_out(out), m_size(size), m_progress(progress) {}

  /// Starts an attempt that asks for the bytes from delivered() on.
  void start_attempt() {
    m_offset = m_delivered;
    m_skip = 0;
    m_refused = false;
  }
  std::uint64_t delivered() const { return m_delivered; }
  std::uint64_t skip_left() const { return m_skip; }
  /// True when the sink (not the network) ended the attempt: no retry can help.
  bool refused() const { return m_refused; }

  Result<void> begin(const HttpResponse& response) override {
    if (response.status == 206) {
      // "bytes N-M/T": the range must start where we asked.
      const std::string range = response.headers.get("Content-Range").value_or("");
      const std::string_view rest = trim(range);
      const std::string expected = "bytes " + std::to_string(m_offset) + "-";
      if (!rest.starts_with(expected)) {
        return refuse(
            Error(Code::network, "asked for the bytes from " + std::to_string(m_offset) +
                                     " on, the registry answered 206 with Content-Range \"" +
                                     printable(range) + "\""));
      }
      return {};
    }
    if (response.status == 200) {
      // A server that ignores Range sends the whole blob again: read past what we have.
      m_skip = m_offset;
      if (const auto length = response.headers.get("Content-Length")) {
        if (const auto value = parse_u64(*length); value && *value > m_size) {
          return refuse(Error(Code::corrupt, "the registry announced " + std::to_string(*value) +
                                                 " bytes for a blob of " + std::to_string(m_size) +
                                                 " bytes"));
        }
      }
      return {};
    }
    return refuse(Error(Code::network, "unexpected answer " + status_text(response.status)));
  }

  Result<void> write(std::span<const char> bytes) override {
    if (m_skip > 0) {
      const std::size_t skipped =
          static_cast<std::size_t>(std::min<std::uint64_t>(m_skip, bytes.size()));
      m_skip -= skipped;
      bytes = bytes.subspan(skipped);
    }
    if (bytes.empty()) {
      return {};
    }
    if (bytes.size() > m_size - m_delivered) {
      return refuse(Error(Code::corrupt, "the registry sent more than the " +
                                             std::to_string(m_size) +
                                             " bytes the descriptor gives"));
    }
    if (auto written = m_out.write(bytes); !written) {
      return refuse(std::move(written).error());
    }
    m_delivered += bytes.size();
    if (m_progress) {
      m_progress(m_delivered);
    }
    return {};
  }

private:
  tl::unexpected<Error> refuse(Error error) {
    m_refused = true;
    return fail(std::move(error));
  }

  layer::ByteSink& m_out;
  std::uint64_t m_size;
  const TransferProgress& m_progress;
  std::uint64_t m_delivered = 0;
  std::uint64_t m_offset = 0;
  std::uint64_t m_skip = 0;
  bool m_refused = false;
};

// --- upload bodies -------------------------------------------------------------------------

// The content of one upload attempt, read from a source the SourceOpener gives. It hands out
// readers of byte ranges; a range that is not where the current source stands (a request
// repeated after a 401 or a redirect, whose body the transport may have read partly) reopens
// the source and skips to the range's start.
class UploadContent {
public:
  UploadContent(const SourceOpener& open, const TransferProgress& progress, std::uint64_t& reported)
      : m_open(open), m_progress(progress), m_reported(reported) {}

  Result<std::unique_ptr<oci::ByteSource>> range(std::uint64_t start, std::uint64_t length);

  Result<std::size_t> read(std::span<char> buffer) {
    MB_TRY_ASSIGN(const std::size_t n, m_source->read(buffer));
    m_position += n;
    // Progress is monotonic across attempts: a restarted upload reports again only once it
    // passes what was already reported.
    if (m_progress && m_position > m_reported) {
      m_reported = m_position;
      m_progress(m_position);
    }
    return n;
  }

  std::uint64_t position() const { return m_position; }

private:
  const SourceOpener& m_open;
  const TransferProgress& m_progress;
  std::uint64_t& m_reported;
  std::unique_ptr<oci::ByteSource> m_source;
  std::uint64_t m_position = 0;
};

// Bytes [start, start + length) of an UploadContent: exactly `length` bytes, or an error when
// the content ends first.
class RangeReader final : public oci::ByteSource {
public:
  RangeReader(UploadContent& content, std::uint64_t length)
      : m_content(content), m_remaining(length) {}

  Result<std::size_t> read(std::span<char> buffer) override {
    if (m_remaining == 0 || buffer.empty()) {
      return 0;
    }
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), m_remaining));
    MB_TRY_ASSIGN(const std::size_t n, m_content.read(buffer.first(want)));
    if (n == 0) {
      return fail(Code::corrupt, "the blob's content ended after " +
                                     std::to_string(m_content.position()) +
                                     " bytes, before the size its descriptor gives");
    }
    m_remaining -= n;
    return n;
  }

private:
  UploadContent& m_content;
  std::uint64_t m_remaining;
};

Result<std::unique_ptr<oci::ByteSource>> UploadContent::range(std::uint64_t start,
                                                              std::uint64_t length) {
  if (!m_source || m_position > start) {
    MB_TRY_ASSIGN(m_source, m_open());
    if (!m_source) {
      return fail(Code::internal, "the upload's source opener returned no source");
    }
    m_position = 0;
  }
  std::vector<char> buffer;
  while (m_position < start) {
    buffer.resize(k_copy_buffer);
    const auto want =
        static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), start - m_position));
    MB_TRY_ASSIGN(const std::size_t n, m_source->read(std::span(buffer).first(want)));
    if (n == 0) {
      return fail(Code::corrupt, "the blob's content ended after " + std::to_string(m_position) +
                                     " bytes, before the size its descriptor gives");
    }
    m_position += n;
  }
  return std::make_unique<RangeReader>(*this, length);
}

bool is_digest_reference(std::string_view reference) {
  // Tags cannot contain ':', digests always do.
  return reference.find(':') != std::string_view::npos;
}

// Whether manifest bytes are a Docker schema 1 manifest, by media type or by content.
bool is_schema1(std::string_view media_type, const nlohmann::json& json) {
  if (media_type == oci::k_docker_schema1_manifest ||
      media_type == oci::k_docker_schema1_signed_manifest) {
    return true;
  }
  if (!json.is_object()) {
    return false;
  }
  const auto version = json.find("schemaVersion");
  return version != json.end() && version->is_number_integer() && version->get<int>() == 1;
}

} // namespace

// --- describe_error_response ---------------------------------------------------------------

std::string describe_error_response(const HttpResponse& response) {
  std::string text = std::to_string(response.status);
  const auto json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object()) {
    const auto errors = json.find("errors");
    if (errors != json.end() && errors->is_array() && !errors->empty()) {
      std::string joined;
      for (const auto& entry : *errors) {
        if (!entry.is_object()) {
          continue;
        }
        std::string part;
        if (const auto code = entry.find("code"); code != entry.end() && code->is_string()) {
          part = printable(code->get<std::string>());
        }
        if (const auto message = entry.find("message"); message != entry.end() &&
                                                        message->is_string() &&
                                                        !message->get<std::string>().empty()) {
          part += (part.empty() ? "" : ": ") + printable(message->get<std::string>());
        }
        if (const auto detail = entry.find("detail"); detail != entry.end() && !detail->is_null()) {
          const std::string detail_text =
              detail->is_string()
                  ? detail->get<std::string>()
                  : detail->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          if (!detail_text.empty()) {
            part += " (" + printable(detail_text) + ")";
          }
        }
        if (!part.empty()) {
          joined += (joined.empty() ? "" : "; ") + part;
        }
      }
      if (!joined.empty()) {
        return text + " " + joined;
      }
    }
  }
  text = status_text(response.status);
  const std::string line = printable(trim(response.body));
  if (!line.empty()) {
    text += ": " + line;
  }
  return text;
}

// --- RegistryClient ------------------------------------------------------------------------

// One logical request: what send() turns into one or more transport exchanges (auth refresh,
// redirects, the plain-HTTP fallback).
struct RegistryClient::Exchange {
  std::string method;
  /// An absolute URL, or a path ("/v2/...") on the registry, whose scheme send() chooses.
  std::string url;
  HttpHeaders headers;
  std::string body;
  /// A streamed body: opens a reader positioned at its start, once per transport exchange.
  std::function<Result<std::unique_ptr<oci::ByteSource>>()> open_body;
  std::uint64_t body_size = 0;
  std::vector<std::string> scopes;

  // Set by send():
  std::string final_url;         ///< the URL that gave the response (after redirects)
  bool final_to_registry = true; ///< whether that URL is the registry's own origin
  /// The exchange broke the protocol (redirect loop, no Location): another attempt would too.
  bool protocol_error = false;
};

RegistryClient::RegistryClient(HttpTransport& transport, Authenticator& auth, HostSettings host,
                               std::string registry_domain, ClientOptions options)
    : m_transport(transport), m_auth(auth), m_host(std::move(host)),
      m_domain(std::move(registry_domain)), m_options(std::move(options)) {
  if (!m_options.sleep) {
    m_options.sleep = [](milliseconds delay) { std::this_thread::sleep_for(delay); };
  }
  if (!m_options.random_unit) {
    m_options.random_unit = default_random_unit;
  }
  if (m_options.chunk_size == 0) {
    m_options.chunk_size = ClientOptions{}.chunk_size;
  }
  if (!m_host.allow_plain_http) {
    m_scheme = 1;
  }
}

// No probe here: the scheme is settled by the first exchange (see send()), so a client that only
// ever fetches blobs does not pay for a round trip to /v2/.
Result<std::string> RegistryClient::base_url() {
  return (m_scheme.load() == 2 ? "http://" : "https://") + m_host.host;
}

Result<HttpResponse> RegistryClient::send(Exchange& exchange, BodySink* sink) {
  std::string method = exchange.method;
  std::string url = exchange.url;
  bool with_body = true;
  bool refreshed = false;
  int hops = 0;
  std::string https_failure; // set while trying plain http after https failed
  const auto protocol_error = [&](std::string message) {
    exchange.protocol_error = true;
    return fail(Code::network, std::move(message));
  };
  for (;;) {
    MB_TRY_ASSIGN(std::string base, base_url());
    if (!https_failure.empty()) {
      base = "http://" + m_host.host;
    }
    if (url.starts_with('/')) {
      url = base + url;
    }
    const auto registry_origin = url_origin(base);
    const auto target_origin = url_origin(url);
    if (!target_origin) {
      return protocol_error("invalid URL \"" + printable(url) + "\"");
    }
    const bool to_registry = target_origin == registry_origin;

    HttpRequest request;
    request.method = method;
    request.url = url;
    request.headers = exchange.headers;
    if (to_registry) {
      // Certificates from certs.d and the Authorization header belong to the registry only; a
      // redirect to object storage gets neither.
      request.tls = m_host.tls;
      MB_TRY_ASSIGN(const auto authorization,
                    m_auth.authorization(m_host.host, m_domain, exchange.scopes));
      if (authorization) {
        request.headers.set("Authorization", *authorization);
      }
    }
    std::unique_ptr<oci::ByteSource> body_source;
    if (with_body && exchange.open_body) {
      MB_TRY_ASSIGN(body_source, exchange.open_body());
      request.streamed_body = StreamedBody{body_source.get(), exchange.body_size};
    } else if (with_body) {
      request.body = exchange.body;
    } else {
      request.headers.remove("Content-Type");
      request.headers.remove("Content-Length");
      request.headers.remove("Content-Range");
    }

    auto response = m_transport.send(request, sink);
    if (!response) {
      Error error = std::move(response).error();
      if (to_registry && url.starts_with("https://") && m_host.allow_plain_http &&
          m_scheme.load() != 1 && error.code() == Code::network && error.sys_errno() != EBADMSG) {
        // Docker's rule for insecure and loopback registries: https first, then plain http
        // when https cannot be had (no TLS there, or a proxy that only carries http). Never
        // after a certificate failure, and never once https has worked on this host. The
        // choice of http is remembered only when http answers (a parallel request may have
        // settled it while this one was trying https).
        https_failure = error.what();
        url = "http://" + url.substr(std::string_view("https://").size());
        continue;
      }
      if (to_registry && url.starts_with("https://") && error.sys_errno() == EPROTO &&
          !m_host.allow_plain_http) {
        error.wrap("https to " + m_host.host +
                   " failed (for a registry that serves plain HTTP, pass --insecure-registry " +
                   m_host.host + ")");
      }
      if (to_registry && url.starts_with("http://") && !https_failure.empty()) {
        error.wrap("https failed (" + https_failure + "), then plain http");
      }
      return fail(std::move(error));
    }
    if (to_registry && url.starts_with("http://") && !https_failure.empty()) {
      int expected = 0;
      m_scheme.compare_exchange_strong(expected, 2);
    }
    if (to_registry && url.starts_with("https://")) {
      int expected = 0;
      m_scheme.compare_exchange_strong(expected, 1);
    }

    if (response->status == 401 && to_registry && !refreshed) {
      refreshed = true;
      // Only a challenge that came over plain HTTP may name a plain-HTTP token realm.
      const ChallengeOrigin origin =
          url.starts_with("http://") ? ChallengeOrigin::plain_http : ChallengeOrigin::https;
      MB_TRY(m_auth.handle_unauthorized(m_host.host, m_domain, exchange.scopes, *response,
                                        m_host.tls, origin, request.headers.get("Authorization")));
      continue;
    }
    if (is_redirect(response->status)) {
      if (hops == k_max_redirects) {
        return protocol_error("more than " + std::to_string(k_max_redirects) +
                              " redirects (the last one from " + url_host(url) + ")");
      }
      const auto location = response->headers.get("Location");
      if (!location || trim(*location).empty()) {
        return protocol_error(url_host(url) + " answered " + status_text(response->status) +
                              " without a Location");
      }
      url = resolve_location(url, *location);
      if (response->status == 303 && method != "HEAD") {
        method = "GET";
        with_body = false;
      }
      ++hops;
      continue;
    }
    exchange.final_url = url;
    exchange.final_to_registry = to_registry;
    return response;
  }
}

namespace {

std::string object_name(std::string_view domain, std::string_view repository,
                        std::string_view reference = {}) {
  std::string name = std::string(domain) + "/" + std::string(repository);
  if (!reference.empty()) {
    name += is_digest_reference(reference) ? '@' : ':';
    name += reference;
  }
  return name;
}

// The checks of get_manifest on a 200 answer: media type, schema 1, digests.
Result<FetchedManifest> finish_manifest(std::string bytes, const HttpResponse& response,
                                        const std::optional<oci::Digest>& wanted,
                                        std::string_view name) {
  FetchedManifest fetched;
  fetched.media_type = bare_media_type(response.headers.get("Content-Type").value_or(""));
  const auto json = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (fetched.media_type.empty() || fetched.media_type == "application/json" ||
      fetched.media_type == "text/plain" || fetched.media_type == "application/octet-stream") {
    // A static file server or an old registry: the document says what it is.
    if (json.is_object()) {
      if (const auto type = json.find("mediaType"); type != json.end() && type->is_string()) {
        fetched.media_type = type->get<std::string>();
      }
    }
  }
  // Before any digest check: a signed schema 1 manifest's Docker-Content-Digest covers the
  // payload without its signatures, so it would look corrupt rather than old.
  if (is_schema1(fetched.media_type, json)) {
    return fail(Code::unsupported,
                std::string(name) +
                    " is a Docker schema 1 manifest, which minibuild does not support "
                    "(deprecated since 2017; push it again with a current client)");
  }
  if (wanted) {
    const oci::Digest actual = oci::digest_of(wanted->algorithm(), bytes);
    if (actual != *wanted) {
      return fail(Code::corrupt, "the registry sent a manifest whose digest is " +
                                     actual.to_string() + ", not the requested " +
                                     wanted->to_string());
    }
    fetched.digest = *wanted;
  }
  if (const auto header = response.headers.get("Docker-Content-Digest");
      header && !trim(*header).empty()) {
    auto answered = oci::Digest::parse(trim(*header));
    if (!answered && answered.error().code() != Code::unsupported) {
      return fail(Code::corrupt, "the registry answered an invalid Docker-Content-Digest \"" +
                                     printable(*header) + "\"");
    }
    if (answered) {
      const oci::Digest actual = oci::digest_of(answered->algorithm(), bytes);
      if (actual != *answered) {
        return fail(Code::corrupt,
                    "the registry answered Docker-Content-Digest " + answered->to_string() +
                        ", but the manifest it sent has digest " + actual.to_string());
      }
      if (!wanted) {
        fetched.digest = *answered;
      }
    }
  }
  if (fetched.digest.empty()) {
    fetched.digest = oci::sha256_of(bytes);
  }
  fetched.bytes = std::move(bytes);
  return fetched;
}

Result<std::optional<oci::Digest>> digest_of_reference(std::string_view reference) {
  if (!is_digest_reference(reference)) {
    return std::nullopt;
  }
  MB_TRY_ASSIGN(oci::Digest digest, oci::Digest::parse(reference));
  return digest;
}

} // namespace

// /v2/ answers 200 to a client it accepts and 401 with a challenge otherwise; the refresh in
// send() turns the challenge into credentials, so a 200 here means they work.
Result<void> RegistryClient::ping() {
  const std::string what = "check registry " + m_host.host;
  return with_retries<void>(m_options, what, [&](int) -> Attempt<void> {
    Exchange exchange;
    exchange.method = "GET";
    exchange.url = "/v2/";
    auto response = send(exchange, nullptr);
    if (!response) {
      return transport_failure(std::move(response).error(), exchange.protocol_error);
    }
    if (response->status < 200 || response->status >= 300) {
      return status_failure(*response, m_domain, "", "", exchange.final_to_registry,
                            exchange.final_url);
    }
    return {};
  });
}

Result<FetchedManifest> RegistryClient::get_manifest(std::string_view repository,
                                                     std::string_view reference) {
  const std::string name = object_name(m_domain, repository, reference);
  const std::string what = "GET manifest " + name;
  auto wanted = digest_of_reference(reference);
  if (!wanted) {
    return fail(std::move(wanted).error().wrap(what));
  }
  const std::vector<std::string> scopes{repository_scope(repository, false)};
  return with_retries<FetchedManifest>(m_options, what, [&](int) -> Attempt<FetchedManifest> {
    Exchange exchange;
    exchange.method = "GET";
    exchange.url = "/v2/" + std::string(repository) + "/manifests/" + std::string(reference);
    exchange.headers.set("Accept", k_accept);
    exchange.scopes = scopes;
    BoundedBodySink sink(k_max_manifest);
    auto response = send(exchange, &sink);
    if (!response) {
      // The sink's refusal (too large) is Code::corrupt, which is not retried.
      return transport_failure(std::move(response).error(), exchange.protocol_error);
    }
    if (response->status != 200) {
      return status_failure(*response, m_domain, "pull", repository, exchange.final_to_registry,
                            exchange.final_url);
    }
    // A transport that ignored the sink kept the body in the response.
    std::string bytes = sink.take();
    if (bytes.empty() && !response->body.empty()) {
      if (response->body.size() > k_max_manifest || response->body_truncated) {
        return final_failure(Error(Code::corrupt, "the manifest is larger than 4 MiB"));
      }
      bytes = std::move(response->body);
    }
    auto fetched = finish_manifest(std::move(bytes), *response, *wanted, name);
    if (!fetched) {
      return final_failure(std::move(fetched).error());
    }
    return std::move(*fetched);
  });
}

Result<std::optional<oci::Descriptor>> RegistryClient::head_manifest(std::string_view repository,
                                                                     std::string_view reference) {
  const std::string name = object_name(m_domain, repository, reference);
  const std::string what = "HEAD manifest " + name;
  auto wanted = digest_of_reference(reference);
  if (!wanted) {
    return fail(std::move(wanted).error().wrap(what));
  }
  const std::vector<std::string> scopes{repository_scope(repository, false)};
  // nullopt inside: the answer lacked what a descriptor needs, so GET it.
  using Head = std::optional<std::optional<oci::Descriptor>>;
  auto head = with_retries<Head>(m_options, what, [&](int) -> Attempt<Head> {
    Exchange exchange;
    exchange.method = "HEAD";
    exchange.url = "/v2/" + std::string(repository) + "/manifests/" + std::string(reference);
    exchange.headers.set("Accept", k_accept);
    exchange.scopes = scopes;
    auto response = send(exchange, nullptr);
    if (!response) {
      return transport_failure(std::move(response).error(), exchange.protocol_error);
    }
    if (response->status == 404) {
      return Head(std::in_place, std::nullopt);
    }
    if (response->status != 200) {
      return status_failure(*response, m_domain, "pull", repository, exchange.final_to_registry,
                            exchange.final_url);
    }
    const std::string type = bare_media_type(response->headers.get("Content-Type").value_or(""));
    const auto digest_header = response->headers.get("Docker-Content-Digest");
    const auto length = parse_u64(response->headers.get("Content-Length").value_or(""));
    if (!digest_header || !length || *length > k_max_manifest ||
        (!oci::is_manifest(type) && !oci::is_index(type))) {
      // No digest, no size, or a type that only the body can explain (schema 1, a generic
      // JSON type): the GET tells, and refuses what it must.
      return Head();
    }
    auto digest = oci::Digest::parse(trim(*digest_header));
    if (!digest) {
      return final_failure(Error(Code::corrupt, "the registry answered an invalid "
                                                "Docker-Content-Digest \"" +
                                                    printable(*digest_header) + "\""));
    }
    if (*wanted && *digest != **wanted) {
      return final_failure(Error(Code::corrupt, "the registry answered Docker-Content-Digest " +
                                                    digest->to_string() + " for " +
                                                    (*wanted)->to_string()));
    }
    oci::Descriptor descriptor;
    descriptor.media_type = type;
    descriptor.digest = *digest;
    descriptor.size = static_cast<std::int64_t>(*length);
    return Head(std::in_place, std::move(descriptor));
  });
  if (!head) {
    return fail(std::move(head).error());
  }
  if (*head) {
    return std::move(**head);
  }
  auto fetched = get_manifest(repository, reference);
  if (!fetched) {
    if (fetched.error().code() == Code::not_found) {
      return std::optional<oci::Descriptor>();
    }
    return fail(std::move(fetched).error());
  }
  return std::optional<oci::Descriptor>(oci::make_descriptor(fetched->media_type, fetched->bytes));
}

// The BlobBodySink lives across attempts: it knows how many bytes the caller's sink already
// holds, which decides the Range of the next attempt and what a 200 answer must skip.
Result<void> RegistryClient::fetch_blob(std::string_view repository, const oci::Descriptor& blob,
                                        layer::ByteSink& out, const TransferProgress& progress) {
  const std::string what =
      "GET blob " + object_name(m_domain, repository) + "@" + blob.digest.to_string();
  if (blob.size < 0 || blob.digest.empty()) {
    return fail(
        Error(Code::internal, "the blob's descriptor has no digest or a negative size").wrap(what));
  }
  // Descriptors with `urls` (foreign layers) are fetched from the registry like any other blob:
  // pull refuses them before asking (docs/registry.md, "Not done yet").
  const auto size = static_cast<std::uint64_t>(blob.size);
  const std::vector<std::string> scopes{repository_scope(repository, false)};
  BlobBodySink sink(out, size, progress);
  return with_retries<void>(m_options, what, [&](int number) -> Attempt<void> {
    if (number > 1 && size > 0 && sink.delivered() == size) {
      return {}; // the connection broke after the last byte
    }
    sink.start_attempt();
    Exchange exchange;
    exchange.method = "GET";
    exchange.url = "/v2/" + std::string(repository) + "/blobs/" + blob.digest.to_string();
    exchange.scopes = scopes;
    if (sink.delivered() > 0) {
      exchange.headers.set("Range", "bytes=" + std::to_string(sink.delivered()) + "-");
    }
    auto response = send(exchange, &sink);
    if (!response) {
      if (sink.refused()) {
        return final_failure(std::move(response).error());
      }
      return transport_failure(std::move(response).error(), exchange.protocol_error);
    }
    if (response->status != 200 && response->status != 206) {
      return status_failure(*response, m_domain, "pull", repository, exchange.final_to_registry,
                            exchange.final_url);
    }
    if (sink.skip_left() > 0 || sink.delivered() < size) {
      return final_failure(Error(Code::corrupt, "the registry sent " +
                                                    std::to_string(sink.delivered()) + " of the " +
                                                    std::to_string(size) + " bytes"));
    }
    return {};
  });
}

Result<std::optional<std::uint64_t>> RegistryClient::blob_size(std::string_view repository,
                                                               const oci::Digest& digest) {
  const std::string what =
      "HEAD blob " + object_name(m_domain, repository) + "@" + digest.to_string();
  const std::vector<std::string> scopes{repository_scope(repository, false)};
  using Size = std::optional<std::uint64_t>;
  return with_retries<Size>(m_options, what, [&](int) -> Attempt<Size> {
    Exchange exchange;
    exchange.method = "HEAD";
    exchange.url = "/v2/" + std::string(repository) + "/blobs/" + digest.to_string();
    exchange.scopes = scopes;
    auto response = send(exchange, nullptr);
    if (!response) {
      return transport_failure(std::move(response).error(), exchange.protocol_error);
    }
    if (response->status == 404) {
      return Size();
    }
    if (response->status != 200) {
      return status_failure(*response, m_domain, "pull", repository, exchange.final_to_registry,
                            exchange.final_url);
    }
    const auto length = parse_u64(response->headers.get("Content-Length").value_or(""));
    if (!length) {
      return final_failure(Error(Code::network, "the registry answered 200 without a "
                                                "Content-Length"));
    }
    return Size(*length);
  });
}

// A cross-repository mount needs push on the target and pull on the source in one token;
// registries that cannot mount (another storage backend, no pull right) open an upload instead.
Result<bool> RegistryClient::mount_blob(std::string_view repository, const oci::Digest& digest,
                                        std::string_view from_repository) {
  const std::string what = "mount blob " + digest.to_string() + " from " +
                           object_name(m_domain, from_repository) + " into " +
                           object_name(m_domain, repository);
  const std::vector<std::string> scopes{repository_scope(repository, true),
                                        repository_scope(from_repository, false)};
  std::string cancel_url;
  auto mounted = with_retries<bool>(m_options, what, [&](int) -> Attempt<bool> {
    Exchange exchange;
    exchange.method = "POST";
    exchange.url = "/v2/" + std::string(repository) +
                   "/blobs/uploads/?mount=" + query_escape(digest.to_string()) +
                   "&from=" + query_escape(from_repository);
    exchange.headers.set("Content-Length", "0");
    exchange.scopes = scopes;
    auto response = send(exchange, nullptr);
    if (!response) {
      return transport_failure(std::move(response).error(), exchange.protocol_error);
    }
    if (response->status == 201) {
      if (auto checked = check_content_digest(*response, digest); !checked) {
        return final_failure(std::move(checked).error());
      }
      return true;
    }
    if (response->status == 202) {
      if (const auto location = response->headers.get("Location")) {
        cancel_url = resolve_location(exchange.final_url, *location);
      }
      return false;
    }
    return status_failure(*response, m_domain, "push", repository, exchange.final_to_registry,
                          exchange.final_url);
  });
  if (mounted && !*mounted && !cancel_url.empty()) {
    // The registry opened an upload instead of mounting. Cancelling it is housekeeping: a
    // registry that refuses (some do not implement DELETE on uploads) expires it anyway, so
    // the answer does not change the result.
    Exchange cancel;
    cancel.method = "DELETE";
    cancel.url = cancel_url;
    cancel.scopes = scopes; // the mount's token covers it
    [[maybe_unused]] const auto ignored = send(cancel, nullptr);
  }
  return mounted;
}

// Every attempt is a whole upload (POST, body, PUT): an upload session cannot be resumed
// portably after a failure (the registry may have kept part of a PATCH or none of it), and
// distribution forgets sessions it considers broken.
Result<void> RegistryClient::upload_blob(std::string_view repository, const oci::Descriptor& blob,
                                         const SourceOpener& open,
                                         const TransferProgress& progress) {
  const std::string what =
      "upload blob " + object_name(m_domain, repository) + "@" + blob.digest.to_string();
  if (blob.size < 0 || blob.digest.empty()) {
    return fail(
        Error(Code::internal, "the blob's descriptor has no digest or a negative size").wrap(what));
  }
  const auto size = static_cast<std::uint64_t>(blob.size);
  const std::vector<std::string> scopes{repository_scope(repository, true)};
  bool chunked = size > m_options.monolithic_limit;
  bool switched = false; // styles switch once at most, so two refusals cannot ping-pong
  std::uint64_t reported = 0;

  const auto fail_status = [&](const HttpResponse& response, const Exchange& exchange,
                               std::string step) -> tl::unexpected<Failure> {
    auto failure = status_failure(response, m_domain, "push", repository,
                                  exchange.final_to_registry, exchange.final_url);
    failure.value().error.wrap(std::move(step));
    return failure;
  };
  const auto fail_transport = [](Error error, const Exchange& exchange,
                                 std::string step) -> tl::unexpected<Failure> {
    auto failure = transport_failure(std::move(error), exchange.protocol_error);
    failure.value().error.wrap(std::move(step));
    return failure;
  };

  // One upload: POST, then one PUT or PATCHes and a PUT. A Failure with switch_style asks for
  // the other style.
  const auto upload_once = [&]() -> Attempt<void> {
    UploadContent content(open, progress, reported);
    Exchange start;
    start.method = "POST";
    start.url = "/v2/" + std::string(repository) + "/blobs/uploads/";
    start.headers.set("Content-Length", "0");
    start.scopes = scopes;
    auto started = send(start, nullptr);
    if (!started) {
      return fail_transport(std::move(started).error(), start, "start upload");
    }
    if (started->status != 202) {
      return fail_status(*started, start, "start upload");
    }
    const auto first_location = started->headers.get("Location");
    if (!first_location || trim(*first_location).empty()) {
      return final_failure(
          Error(Code::network, "start upload: the registry answered 202 without a Location"));
    }
    std::string location = resolve_location(start.final_url, *first_location);

    // Each answer's Location is the next request's URL: the _state it carries is the
    // registry's record of what it received so far.
    std::uint64_t offset = 0;
    if (chunked) {
      const std::uint64_t chunk_size = m_options.chunk_size;
      while (offset < size) {
        const std::uint64_t length = std::min(chunk_size, size - offset);
        const std::string range =
            std::to_string(offset) + "-" + std::to_string(offset + length - 1);
        Exchange patch;
        patch.method = "PATCH";
        patch.url = location;
        patch.headers.set("Content-Type", std::string(k_octet_stream));
        patch.headers.set("Content-Range", range);
        patch.headers.set("Content-Length", std::to_string(length));
        patch.open_body = [&content, offset, length] { return content.range(offset, length); };
        patch.body_size = length;
        patch.scopes = scopes;
        const std::string step = "send bytes " + range;
        auto sent = send(patch, nullptr);
        if (!sent) {
          return fail_transport(std::move(sent).error(), patch, step);
        }
        if (sent->status != 202) {
          const int status = sent->status;
          auto failure = fail_status(*sent, patch, step);
          if (offset == 0 && !switched && (status == 400 || status == 405 || status == 416)) {
            failure.value().switch_style = true;
          }
          return failure;
        }
        if (const auto next = sent->headers.get("Location"); next && !trim(*next).empty()) {
          location = resolve_location(patch.final_url, *next);
        }
        offset += length;
      }
    }

    Exchange finish;
    finish.method = "PUT";
    finish.url = with_query(location, "digest", blob.digest.to_string());
    finish.scopes = scopes;
    if (chunked) {
      finish.headers.set("Content-Length", "0");
    } else {
      finish.headers.set("Content-Type", std::string(k_octet_stream));
      finish.headers.set("Content-Length", std::to_string(size));
      finish.open_body = [&content, size] { return content.range(0, size); };
      finish.body_size = size;
    }
    const std::string step = chunked ? "commit upload" : "send blob";
    auto finished = send(finish, nullptr);
    if (!finished) {
      return fail_transport(std::move(finished).error(), finish, step);
    }
    if (finished->status != 201) {
      const int status = finished->status;
      auto failure = fail_status(*finished, finish, step);
      if (!chunked && !switched && status == 413) {
        failure.value().switch_style = true;
      }
      return failure;
    }
    if (auto checked = check_content_digest(*finished, blob.digest); !checked) {
      return final_failure(std::move(checked).error().wrap(step));
    }
    return {};
  };

  return with_retries<void>(m_options, what, [&](int) -> Attempt<void> {
    for (;;) {
      auto result = upload_once();
      if (!result && result.error().switch_style) {
        // Not a retry: the registry told us which style it does not take.
        chunked = !chunked;
        switched = true;
        continue;
      }
      return result;
    }
  });
}

// The bytes go out exactly as given: the digest a pull verifies is the hash of these bytes,
// so the manifest is never re-serialised here.
Result<oci::Digest> RegistryClient::put_manifest(std::string_view repository,
                                                 std::string_view reference, std::string_view bytes,
                                                 std::string_view media_type) {
  const std::string what = "PUT manifest " + object_name(m_domain, repository, reference);
  auto named = digest_of_reference(reference);
  if (!named) {
    return fail(std::move(named).error().wrap(what));
  }
  const oci::Digest digest =
      oci::digest_of(*named ? (*named)->algorithm() : oci::DigestAlgorithm::sha256, bytes);
  if (*named && **named != digest) {
    return fail(Error(Code::internal, "the manifest's digest is " + digest.to_string() +
                                          ", not the " + (*named)->to_string() + " it is put as")
                    .wrap(what));
  }
  const std::vector<std::string> scopes{repository_scope(repository, true)};
  return with_retries<oci::Digest>(m_options, what, [&](int) -> Attempt<oci::Digest> {
    Exchange exchange;
    exchange.method = "PUT";
    exchange.url = "/v2/" + std::string(repository) + "/manifests/" + std::string(reference);
    exchange.headers.set("Content-Type", std::string(media_type));
    exchange.body = std::string(bytes);
    exchange.scopes = scopes;
    auto response = send(exchange, nullptr);
    if (!response) {
      return transport_failure(std::move(response).error(), exchange.protocol_error);
    }
    if (response->status != 201) {
      return status_failure(*response, m_domain, "push", repository, exchange.final_to_registry,
                            exchange.final_url);
    }
    if (auto checked = check_content_digest(*response, digest); !checked) {
      return final_failure(std::move(checked).error());
    }
    return digest;
  });
}

} // namespace minibuild::registry
