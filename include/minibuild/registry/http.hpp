// The HTTP transport: the narrow interface between the registry logic and the network.
//
// Everything above this file (auth, the registry client, pull and push) speaks to registries
// only through HttpTransport, so its logic can be unit tested with an in-memory transport,
// while the real one (make_curl_transport, libcurl + OpenSSL) is exercised by integration tests
// against a real registry. A transport performs exactly one exchange per send(): it follows no
// redirects, retries nothing and knows nothing about authentication; the client decides those
// (client.hpp), so that, for example, an Authorization header never follows a redirect to
// another host.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/byte_source.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::registry {

/// HTTP header fields in the order they were added. Names compare case-insensitively.
class HttpHeaders {
public:
  void add(std::string name, std::string value);
  /// Replaces every field called `name` by one with `value`.
  void set(std::string_view name, std::string value);
  void remove(std::string_view name);
  /// The first value of `name`; nullopt when absent.
  std::optional<std::string> get(std::string_view name) const;
  /// Every value of `name`, in order (WWW-Authenticate may repeat).
  std::vector<std::string> get_all(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return m_entries; }

private:
  std::vector<std::pair<std::string, std::string>> m_entries;
};

/// How to verify and present TLS for one registry host (hosts.hpp decides the values).
struct TlsSettings {
  /// PEM files of extra trusted CAs (certs.d `*.crt`, `ca.crt`, --registry-ca). They are added
  /// to the system's trust store, never replace it.
  std::vector<std::string> ca_files;
  /// Client certificate and key (PEM) for mutual TLS (certs.d `client.cert` / `client.key`).
  std::string client_cert_file;
  std::string client_key_file;

  bool operator==(const TlsSettings&) const = default;
};

/// A request body streamed from a source of known length (blob uploads).
struct StreamedBody {
  oci::ByteSource* source = nullptr; ///< borrowed; read to its end by send()
  std::uint64_t size = 0;            ///< sent as Content-Length; the source must yield exactly this
};

struct HttpRequest {
  std::string method = "GET"; ///< GET HEAD POST PUT PATCH DELETE
  std::string url;            ///< absolute http:// or https:// URL
  HttpHeaders headers;
  /// The body: `body` when `streamed_body` is not set. Empty for GET and HEAD.
  std::string body;
  std::optional<StreamedBody> streamed_body;
  /// TLS settings for https URLs; verification is always on whatever they say.
  TlsSettings tls;
};

struct HttpResponse {
  int status = 0; ///< 200, 401, ...
  HttpHeaders headers;
  /// The body, when send() was not given a sink or the status was not 2xx. Bodies collected
  /// here are cut at TransportOptions::max_buffered_body (errors, manifests, tokens are small).
  std::string body;
  /// True when `body` was cut.
  bool body_truncated = false;
};

/// Receives a 2xx response body as it arrives. An error returned from write() aborts the
/// transfer; send() returns that error.
class BodySink {
public:
  virtual ~BodySink() = default;
  /// Called once, before any write(), when the status and headers are known. An error here
  /// aborts the transfer before any body byte is delivered.
  virtual Result<void> begin(const HttpResponse& /*status_and_headers*/) { return {}; }
  virtual Result<void> write(std::span<const char> bytes) = 0;
};

struct TransportOptions {
  std::chrono::seconds connect_timeout{30};
  /// A transfer slower than low_speed_bytes per second for low_speed_time is aborted
  /// (a stalled connection), rather than bounding the whole transfer: blobs can be large.
  std::uint32_t low_speed_bytes = 1;
  std::chrono::seconds low_speed_time{60};
  std::size_t max_buffered_body = 8 << 20;
  std::string user_agent = "minibuild";
};

/// One HTTP exchange at a time per call; implementations are thread-safe (several downloads
/// share one transport and its connection cache).
class HttpTransport {
public:
  virtual ~HttpTransport() = default;

  /// Performs `request` once. With a `sink`, a 2xx body is handed to it as it arrives and not
  /// kept in the response; any other body is collected into HttpResponse::body. Without a
  /// sink every body is collected. HTTP error statuses are responses, not errors: only a
  /// failure to exchange (DNS, connect, TLS, reset, timeout, an aborted body) is an Error,
  /// with Code::network and a message naming the host and the cause, or the sink's error.
  /// Error::sys_errno() says what kind of failure it was: EHOSTUNREACH (the name did not
  /// resolve), EPROTO (the peer does not speak TLS: a caller allowed to use plain HTTP may fall
  /// back), EBADMSG (TLS verification or certificate failure), else the socket's errno
  /// (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...) or EIO.
  virtual Result<HttpResponse> send(const HttpRequest& request, BodySink* sink) = 0;
};

/// The libcurl transport: a pool of easy handles reused across calls and threads, so each keeps
/// its connection alive (libcurl cannot share one connection between threads running at the
/// same time; DNS and TLS sessions are shared), HTTP/2 where the server offers it over TLS (one
/// stream per handle: no multiplexing across calls), TLS through OpenSSL with peer and host
/// verification always on, proxies from the usual environment variables (http_proxy,
/// https_proxy, no_proxy: libcurl's own handling).
Result<std::unique_ptr<HttpTransport>> make_curl_transport(const TransportOptions& options = {});

} // namespace minibuild::registry
