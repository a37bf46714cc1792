// The libcurl HttpTransport (http.hpp).
//
// Handles: libcurl's easy interface, one blocking transfer per send(). Easy handles are pooled
// and reused (curl_easy_reset between uses keeps a handle's connection cache), so sequential
// requests from one thread reuse one keep-alive connection, and concurrent ones each take a
// handle of their own. A CURLSH share, with one mutex per kind of data, gives every handle the
// same DNS cache and TLS session cache. The connection cache is deliberately NOT in the share:
// libcurl does not support sharing connections between concurrently running threads
// (https://curl.se/libcurl/c/CURLSHOPT_SHARE.html, CURL_LOCK_DATA_CONNECT).
//
// TLS: verification is always on. Extra CAs are added to the system store by handing libcurl one
// PEM blob (system bundle + extra files) through CURLOPT_CAINFO_BLOB, which replaces
// CURLOPT_CAINFO for that handle; blobs are built once per set of files and kept.
//
// Errors: every failure to exchange is Code::network with an errno that says what kind it was,
// because the caller decides on it (retry.hpp, and the plain-HTTP fallback in client.cpp):
//   EHOSTUNREACH  the name did not resolve;
//   EPROTO        the peer does not speak TLS (https:// to a plain HTTP server);
//   EBADMSG       TLS verification or certificate failure;
//   ECONNREFUSED, ECONNRESET, ETIMEDOUT, ... what the socket said, or the nearest one;
//   EIO           anything else libcurl reports.
// A sink's or a request body's error is returned as it is.
#include "text.hpp"

#include <minibuild/base/file.hpp>
#include <minibuild/registry/http.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <map>
#include <mutex>
#include <unistd.h>

namespace minibuild::registry {
namespace {

using text::trim;

constexpr std::size_t k_max_idle_handles = 8;
constexpr const char* k_default_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";

#ifdef CURL_WRITEFUNC_ERROR
constexpr std::size_t k_write_abort = CURL_WRITEFUNC_ERROR;
#else
constexpr std::size_t k_write_abort = static_cast<std::size_t>(-1);
#endif

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text::iequals(text.substr(0, prefix.size()), prefix);
}

// The URL for messages: without "user:password@".
std::string redact_url(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return std::string(url);
  }
  const std::size_t authority = scheme_end + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", authority), url.size());
  const std::size_t at = url.substr(0, authority_end).rfind('@');
  if (at == std::string_view::npos || at < authority) {
    return std::string(url);
  }
  return std::string(url.substr(0, authority)) + std::string(url.substr(at + 1));
}

Result<void> init_curl_once() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return fail(Code::internal, std::string("curl_global_init: ") + curl_easy_strerror(result));
  }
  return {};
}

// OpenSSL's texts when the peer answered a ClientHello with something that is not TLS, usually
// an HTTP 400 from a plain server ("wrong version number" up to OpenSSL 3.1, "packet length too
// long" / "record layer failure" later, "unknown protocol" before 1.1).
bool is_not_tls_detail(std::string_view detail) {
  for (std::string_view marker : {"wrong version number", "packet length too long",
                                  "record layer failure", "unknown protocol", "http request"}) {
    if (detail.find(marker) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

int errno_for(CURLcode code, long os_errno, std::string_view detail) {
  const int socket_errno = os_errno > 0 ? static_cast<int>(os_errno) : 0;
  switch (code) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return EHOSTUNREACH;
  case CURLE_COULDNT_CONNECT:
    return socket_errno != 0 ? socket_errno : ECONNREFUSED;
  case CURLE_OPERATION_TIMEDOUT:
    return ETIMEDOUT;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_CIPHER:
    return EBADMSG;
  case CURLE_SSL_CONNECT_ERROR:
    if (is_not_tls_detail(detail)) {
      return EPROTO;
    }
    // A handshake refused over certificates (e.g. "alert certificate required" when the server
    // wants a client certificate) fails the same way next time.
    if (detail.find("certificate") != std::string_view::npos) {
      return EBADMSG;
    }
    // The socket errno may be stale from an earlier step of the handshake: do not trust it.
    return ECONNRESET;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    return socket_errno != 0 ? socket_errno : ECONNRESET;
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return ECONNRESET;
  case CURLE_OUT_OF_MEMORY:
    return ENOMEM;
  default:
    return EIO;
  }
}

struct EasyCleanup {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
using EasyHandle = std::unique_ptr<CURL, EasyCleanup>;

struct ShareCleanup {
  void operator()(CURLSH* share) const { curl_share_cleanup(share); }
};

struct SlistFree {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// The state of one send(), reached by the callbacks through their user pointer.
struct Transfer {
  const TransportOptions* options = nullptr;
  BodySink* sink = nullptr;
  HttpResponse response;
  bool sink_begun = false;
  /// The body reached max_buffered_body and the transfer was stopped on purpose.
  bool body_cut = false;
  /// A sink's or the request body's error, which ends the transfer and is returned as it is.
  std::optional<Error> callback_error;
  oci::ByteSource* upload = nullptr;
  std::uint64_t upload_size = 0;
  std::uint64_t upload_sent = 0;
};

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t length = size * count;
  const std::string_view line(data, length);
  if (line.starts_with("HTTP/")) {
    // A new status line: an interim response (100 Continue) or the final one. Only the final
    // response's fields are kept.
    transfer.response.headers = HttpHeaders();
    transfer.response.status = 0;
    const std::size_t space = line.find(' ');
    if (space != std::string_view::npos) {
      int status = 0;
      for (std::size_t i = space + 1;
           i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); ++i) {
        status = status * 10 + (line[i] - '0');
      }
      transfer.response.status = status;
    }
    return length;
  }
  const std::string_view text = trim(line);
  if (text.empty()) {
    return length;
  }
  if (line.front() == ' ' || line.front() == '\t') {
    // obs-fold (RFC 9112 section 5.2): the line continues the previous field's value.
    HttpHeaders rebuilt;
    auto entries = transfer.response.headers.entries();
    if (!entries.empty()) {
      entries.back().second += " " + std::string(text);
    }
    for (auto& [name, value] : entries) {
      rebuilt.add(std::move(name), std::move(value));
    }
    transfer.response.headers = std::move(rebuilt);
    return length;
  }
  const std::size_t colon = text.find(':');
  if (colon != std::string_view::npos) {
    transfer.response.headers.add(std::string(trim(text.substr(0, colon))),
                                  std::string(trim(text.substr(colon + 1))));
  }
  return length;
}

bool is_success(int status) {
  return status >= 200 && status < 300;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t length = size * count;
  if (transfer.sink != nullptr && is_success(transfer.response.status)) {
    if (!transfer.sink_begun) {
      transfer.sink_begun = true;
      if (Result<void> begun = transfer.sink->begin(transfer.response); !begun) {
        transfer.callback_error = std::move(begun).error();
        return k_write_abort;
      }
    }
    if (Result<void> written = transfer.sink->write(std::span<const char>(data, length));
        !written) {
      transfer.callback_error = std::move(written).error();
      return k_write_abort;
    }
    return length;
  }
  std::string& body = transfer.response.body;
  const std::size_t room = transfer.options->max_buffered_body -
                           std::min(body.size(), transfer.options->max_buffered_body);
  if (length > room) {
    // Stop rather than drain: an error body this large is not worth the bandwidth, and the
    // connection is not reused after an aborted transfer.
    body.append(data, room);
    transfer.response.body_truncated = true;
    transfer.body_cut = true;
    return k_write_abort;
  }
  body.append(data, length);
  return length;
}

std::size_t on_upload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  // Never hand libcurl more than the announced Content-Length.
  const std::size_t wanted = static_cast<std::size_t>(
      std::min<std::uint64_t>(size * count, transfer.upload_size - transfer.upload_sent));
  if (wanted == 0) {
    return 0;
  }
  Result<std::size_t> got = transfer.upload->read(std::span<char>(buffer, wanted));
  if (!got) {
    transfer.callback_error = std::move(got).error();
    return CURL_READFUNC_ABORT;
  }
  if (*got == 0) {
    transfer.callback_error =
        Error(Code::io, "request body ended after " + std::to_string(transfer.upload_sent) +
                            " of " + std::to_string(transfer.upload_size) + " bytes");
    return CURL_READFUNC_ABORT;
  }
  transfer.upload_sent += *got;
  return *got;
}

class CurlTransport final : public HttpTransport {
public:
  explicit CurlTransport(const TransportOptions& options) : m_options(options) {}

  Result<void> init() {
    m_share.reset(curl_share_init());
    if (!m_share) {
      return fail(Code::internal, "curl_share_init failed");
    }
    CURLSHcode code = curl_share_setopt(m_share.get(), CURLSHOPT_LOCKFUNC, &lock_share);
    if (code == CURLSHE_OK) {
      code = curl_share_setopt(m_share.get(), CURLSHOPT_UNLOCKFUNC, &unlock_share);
    }
    if (code == CURLSHE_OK) {
      code = curl_share_setopt(m_share.get(), CURLSHOPT_USERDATA, this);
    }
    if (code == CURLSHE_OK) {
      code = curl_share_setopt(m_share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
    if (code == CURLSHE_OK) {
      code = curl_share_setopt(m_share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    if (code != CURLSHE_OK) {
      return fail(Code::internal, std::string("curl_share_setopt: ") + curl_share_strerror(code));
    }
    m_system_ca_bundle = k_default_ca_bundle;
#if LIBCURL_VERSION_NUM >= 0x075400 // CURLINFO_CAINFO: 7.84.0
    if (EasyHandle probe{curl_easy_init()}) {
      char* path = nullptr;
      if (curl_easy_getinfo(probe.get(), CURLINFO_CAINFO, &path) == CURLE_OK && path != nullptr) {
        m_system_ca_bundle = path;
      }
    }
#endif
    return {};
  }

  Result<HttpResponse> send(const HttpRequest& request, BodySink* sink) override;

private:
  static void lock_share(CURL* /*easy*/, curl_lock_data data, curl_lock_access /*access*/,
                         void* user) {
    static_cast<CurlTransport*>(user)->m_share_locks[static_cast<std::size_t>(data)].lock();
  }
  static void unlock_share(CURL* /*easy*/, curl_lock_data data, void* user) {
    static_cast<CurlTransport*>(user)->m_share_locks[static_cast<std::size_t>(data)].unlock();
  }

  // A handle from the pool, most recently used first (its connections are the warmest).
  EasyHandle acquire() {
    {
      std::lock_guard lock(m_pool_mutex);
      if (!m_idle.empty()) {
        EasyHandle handle = std::move(m_idle.back());
        m_idle.pop_back();
        return handle;
      }
    }
    return EasyHandle(curl_easy_init());
  }

  // Back to the pool. The reset drops every pointer into the finished send() (error buffer,
  // header list, callbacks' state) but keeps the handle's live connections.
  void release(EasyHandle handle) {
    curl_easy_reset(handle.get());
    std::lock_guard lock(m_pool_mutex);
    if (m_idle.size() < k_max_idle_handles) {
      m_idle.push_back(std::move(handle));
    }
  }

  Result<std::shared_ptr<const std::string>> ca_blob(const std::vector<std::string>& files);
  Result<void> configure_tls(CURL* easy, const TlsSettings& tls, curl_blob& blob,
                             std::shared_ptr<const std::string>& keep);

  const TransportOptions m_options;
  // Declared before the share, which may call them while it is cleaned up.
  std::array<std::mutex, CURL_LOCK_DATA_LAST> m_share_locks;
  std::unique_ptr<CURLSH, ShareCleanup> m_share;
  std::string m_system_ca_bundle;
  std::mutex m_ca_mutex;
  std::map<std::vector<std::string>, std::shared_ptr<const std::string>> m_ca_blobs;
  std::mutex m_pool_mutex;
  std::vector<EasyHandle> m_idle; // declared after the share: cleaned up before it
};

Result<std::shared_ptr<const std::string>>
CurlTransport::ca_blob(const std::vector<std::string>& files) {
  std::lock_guard lock(m_ca_mutex);
  if (auto found = m_ca_blobs.find(files); found != m_ca_blobs.end()) {
    return found->second;
  }
  std::string blob;
  // A system without a bundle (a minimal container) trusts only the extra CAs.
  if (Result<std::string> system = read_file(m_system_ca_bundle)) {
    blob = std::move(*system);
    blob += '\n';
  } else if (system.error().code() != Code::not_found) {
    return fail(std::move(system).error().wrap("read the system CA bundle"));
  }
  for (const std::string& file : files) {
    MB_TRY_ASSIGN(std::string text, read_file(file));
    if (text.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return fail(Code::usage, "CA file \"" + file + "\" holds no PEM certificate");
    }
    blob += text;
    blob += '\n';
  }
  auto shared = std::make_shared<const std::string>(std::move(blob));
  m_ca_blobs.emplace(files, shared);
  return shared;
}

Result<void> CurlTransport::configure_tls(CURL* easy, const TlsSettings& tls, curl_blob& blob,
                                          std::shared_ptr<const std::string>& keep) {
  CURLcode code = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  if (code == CURLE_OK) {
    code = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  }
  if (!tls.ca_files.empty()) {
    MB_TRY_ASSIGN(keep, ca_blob(tls.ca_files));
    blob.data = const_cast<char*>(keep->data()); // libcurl only reads it
    blob.len = keep->size();
    blob.flags = CURL_BLOB_NOCOPY; // the cache outlives every transfer
    if (code == CURLE_OK) {
      code = curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
    }
  }
  if (tls.client_cert_file.empty() != tls.client_key_file.empty()) {
    return fail(Code::usage, "a client certificate needs both a certificate and a key file");
  }
  if (!tls.client_cert_file.empty()) {
    // libcurl would only say "could not load PEM client certificate" at handshake time.
    for (const std::string* file : {&tls.client_cert_file, &tls.client_key_file}) {
      if (::access(file->c_str(), R_OK) != 0) {
        return fail_errno(errno, "read client certificate file \"" + *file + "\"");
      }
    }
    if (code == CURLE_OK) {
      code = curl_easy_setopt(easy, CURLOPT_SSLCERT, tls.client_cert_file.c_str());
    }
    if (code == CURLE_OK) {
      code = curl_easy_setopt(easy, CURLOPT_SSLKEY, tls.client_key_file.c_str());
    }
  }
  if (code != CURLE_OK) {
    return fail(Code::internal, std::string("set TLS options: ") + curl_easy_strerror(code));
  }
  return {};
}

Result<HttpResponse> CurlTransport::send(const HttpRequest& request, BodySink* sink) {
  const std::string what = request.method + " " + redact_url(request.url);
  const bool https = starts_with_ignoring_case(request.url, "https://");
  if (!https && !starts_with_ignoring_case(request.url, "http://")) {
    return fail(Code::usage, what + ": not an http:// or https:// URL");
  }
  const std::string& method = request.method;
  if (method != "GET" && method != "HEAD" && method != "POST" && method != "PUT" &&
      method != "PATCH" && method != "DELETE") {
    return fail(Code::usage, what + ": unsupported HTTP method");
  }
  if (request.streamed_body && request.streamed_body->source == nullptr) {
    return fail(Code::internal, what + ": streamed body without a source");
  }
  const bool streamed = request.streamed_body.has_value() && method != "GET" && method != "HEAD";
  const bool has_body = streamed || (method != "GET" && method != "HEAD" &&
                                     (!request.body.empty() || method != "DELETE"));

  // Header fields. The transport owns the framing (Content-Length, Transfer-Encoding, Expect),
  // so such fields from the caller are dropped rather than sent twice.
  std::unique_ptr<curl_slist, SlistFree> header_list;
  const auto append = [&](const std::string& line) {
    curl_slist* head = curl_slist_append(header_list.get(), line.c_str());
    if (head == nullptr) {
      return false;
    }
    (void)header_list.release(); // the same list, or a new one when it was empty
    header_list.reset(head);
    return true;
  };
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers.entries()) {
    if (text::iequals(name, "Content-Length") || text::iequals(name, "Transfer-Encoding") ||
        text::iequals(name, "Expect")) {
      continue;
    }
    // Never quote the value: it may be an Authorization header.
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return fail(Code::internal, what + ": header field \"" + name + "\" is malformed");
    }
    has_content_type = has_content_type || text::iequals(name, "Content-Type");
    // "Name;" is libcurl's way to send a field with an empty value.
    if (!append(value.empty() ? name + ";" : name + ": " + value)) {
      return fail_errno(ENOMEM, what + ": build header list");
    }
  }
  if (has_body) {
    // No "Expect: 100-continue" round trip, and no form-urlencoded Content-Type by default.
    if (!append("Expect:") || (!has_content_type && !append("Content-Type:"))) {
      return fail_errno(ENOMEM, what + ": build header list");
    }
  }

  EasyHandle handle = acquire();
  if (!handle) {
    return fail(Code::internal, what + ": curl_easy_init failed");
  }
  CURL* easy = handle.get();
  struct Release {
    CurlTransport* transport;
    EasyHandle* handle;
    ~Release() { transport->release(std::move(*handle)); }
  } release_on_return{this, &handle};

  Transfer transfer;
  transfer.options = &m_options;
  transfer.sink = sink;
  std::array<char, CURL_ERROR_SIZE> error_buffer{};
  curl_blob ca_blob_option{};
  std::shared_ptr<const std::string> ca_blob_keep;

  CURLcode code = CURLE_OK;
  const auto set = [&](CURLoption option, auto value) {
    if (code == CURLE_OK) {
      code = curl_easy_setopt(easy, option, value);
    }
  };
  set(CURLOPT_SHARE, m_share.get());
  set(CURLOPT_ERRORBUFFER, error_buffer.data());
  set(CURLOPT_URL, request.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_NOSIGNAL, 1L); // no SIGALRM for DNS timeouts: other threads run
  set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L); // a proxy's CONNECT reply is not the response
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(m_options.connect_timeout.count()));
  set(CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(m_options.low_speed_bytes));
  set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(m_options.low_speed_time.count()));
  if (!m_options.user_agent.empty()) {
    set(CURLOPT_USERAGENT, m_options.user_agent.c_str());
  }
  set(CURLOPT_HEADERFUNCTION, &on_header);
  set(CURLOPT_HEADERDATA, &transfer);
  set(CURLOPT_WRITEFUNCTION, &on_body);
  set(CURLOPT_WRITEDATA, &transfer);
  if (header_list) {
    set(CURLOPT_HTTPHEADER, header_list.get());
  }

  if (method == "GET") {
    set(CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else if (streamed) {
    transfer.upload = request.streamed_body->source;
    transfer.upload_size = request.streamed_body->size;
    const auto size = static_cast<curl_off_t>(request.streamed_body->size);
    set(CURLOPT_READFUNCTION, &on_upload);
    set(CURLOPT_READDATA, &transfer);
    if (method == "POST") {
      set(CURLOPT_POST, 1L);
      set(CURLOPT_POSTFIELDSIZE_LARGE, size);
    } else {
      // UPLOAD with a known size sends Content-Length, never chunked.
      set(CURLOPT_UPLOAD, 1L);
      set(CURLOPT_INFILESIZE_LARGE, size);
      if (method != "PUT") {
        set(CURLOPT_CUSTOMREQUEST, method.c_str());
      }
    }
  } else if (has_body) {
    // The request outlives the transfer, so libcurl may point into it (no copy).
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    set(CURLOPT_POSTFIELDS, request.body.data());
    if (method != "POST") {
      set(CURLOPT_CUSTOMREQUEST, method.c_str());
    }
  } else {
    set(CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (code != CURLE_OK) {
    return fail(Code::internal, what + ": set options: " + curl_easy_strerror(code));
  }
  if (https) {
    if (Result<void> configured = configure_tls(easy, request.tls, ca_blob_option, ca_blob_keep);
        !configured) {
      return fail(std::move(configured).error().wrap(what));
    }
  }

  code = curl_easy_perform(easy);
  if (transfer.callback_error) {
    return fail(std::move(*transfer.callback_error));
  }
  if (code == CURLE_WRITE_ERROR && transfer.body_cut) {
    code = CURLE_OK;
  }
  if (code != CURLE_OK) {
    long os_errno = 0;
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
    const std::string detail = error_buffer.data();
    std::string message = what + ": " + curl_easy_strerror(code);
    if (!detail.empty() && detail != curl_easy_strerror(code)) {
      message += " (" + detail + ")";
    }
    if (code == CURLE_URL_MALFORMAT) { // the caller's mistake, not the network's
      return fail(Error::from_errno(EINVAL, std::move(message)).with_code(Code::usage));
    }
    return fail(Error::from_errno(errno_for(code, os_errno, detail), std::move(message))
                    .with_code(Code::network));
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = static_cast<int>(status);
  // A 2xx without a body (HEAD, 201 Created) still opens the sink, as ScriptedTransport does.
  if (sink != nullptr && is_success(transfer.response.status) && !transfer.sink_begun) {
    MB_TRY(sink->begin(transfer.response));
  }
  return std::move(transfer.response);
}

} // namespace

Result<std::unique_ptr<HttpTransport>> make_curl_transport(const TransportOptions& options) {
  MB_TRY(init_curl_once());
  auto transport = std::make_unique<CurlTransport>(options);
  MB_TRY(transport->init());
  return std::unique_ptr<HttpTransport>(std::move(transport));
}

} // namespace minibuild::registry
