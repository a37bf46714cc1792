// A small, real HTTP/1.1 server on 127.0.0.1 for tests of the real HTTP transport (and of
// anything built on it) without a network: a random port, one thread accepting, one thread per
// connection, blocking sockets. A handler written by the test answers each request; the server
// records every request and counts accepted connections, so a test can check keep-alive.
//
// It can misbehave on purpose: delay a response, or close the connection after part of the body
// (the announced Content-Length stays the full size), so tests can provoke timeouts and
// truncated transfers. It speaks plain HTTP only; bytes that cannot start an HTTP request (a TLS
// ClientHello) are answered with 400 and the connection is closed, as common servers do.
//
//   LoopbackHttpServer server([](const HttpServerRequest& request) {
//     return HttpServerResponse{.status = 200, .body = "hello " + request.target};
//   });
//   registry::HttpRequest request;
//   request.url = server.url("/v2/");
//   auto response = transport->send(request, nullptr);
//   CHECK(server.requests().at(0).target == "/v2/");
//   CHECK(server.connections_accepted() == 1);
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace minibuild::test {

namespace loopback_http_detail {
inline bool same_name(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}
inline std::optional<std::size_t> parse_size(std::string_view text, int base) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (error != std::errc() || end == text.data()) {
    return std::nullopt;
  }
  return value;
}
} // namespace loopback_http_detail

/// One request as the server received it.
struct HttpServerRequest {
  std::string method; ///< "GET", "PUT", ...
  std::string target; ///< the request target as sent: "/v2/app/blobs/uploads/?digest=..."
  std::vector<std::pair<std::string, std::string>> headers; ///< in order, names as sent
  std::string body;           ///< the body, de-chunked when it came with Transfer-Encoding: chunked
  bool chunked = false;       ///< true when the body came chunked
  std::size_t connection = 0; ///< which accepted connection carried it, counting from 1

  /// The first value of header `name` (case-insensitive); nullopt when absent.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (loopback_http_detail::same_name(key, name)) {
        return value;
      }
    }
    return std::nullopt;
  }
};

/// What the handler answers (every field has a default, so designated initializers work:
/// `HttpServerResponse{.status = 404}`). Content-Length is added (the body's size) unless `headers`
/// has one, which lets a test announce more than it sends. For HEAD the body is never sent.
struct HttpServerResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  /// Wait this long before sending anything (the server's destructor cuts the wait short).
  std::chrono::milliseconds delay{0};
  /// Send only this many bytes of the body, then close the connection.
  std::optional<std::size_t> close_after_body_bytes{};
  /// When set, an unasked "100 Continue" interim response with these fields goes first (RFC 9110
  /// allows it), so a test can check that a client keeps only the final response's fields.
  std::optional<std::vector<std::pair<std::string, std::string>>> interim_continue{};
};

struct HttpServerOptions {
  /// Keep connections open between requests (HTTP/1.1 persistent connections). When false, every
  /// response carries "Connection: close" and the connection is closed after it.
  bool keep_alive = true;
};

/// The server. Construction binds and starts listening (REQUIREs on failure); destruction stops
/// all threads and closes every connection. The handler is called for one request at a time
/// (calls are serialised under a mutex), from the connection threads: it must not use Catch2
/// assertions (they throw on the wrong thread); check requests() afterwards instead.
class LoopbackHttpServer {
public:
  using Handler = std::function<HttpServerResponse(const HttpServerRequest&)>;

  explicit LoopbackHttpServer(Handler handler, HttpServerOptions options = {})
      : m_handler(std::move(handler)), m_options(options) {
    m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_listen_fd >= 0);
    const int one = 1;
    ::setsockopt(m_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    REQUIRE(::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(m_listen_fd, 64) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    m_port = ntohs(address.sin_port);
    REQUIRE(::pipe2(m_wake, O_CLOEXEC) == 0);
    m_accept_thread = std::thread([this] { accept_loop(); });
  }

  ~LoopbackHttpServer() {
    const char byte = 0;
    [[maybe_unused]] const ssize_t written = ::write(m_wake[1], &byte, 1);
    m_accept_thread.join();
    // No new connection threads after the accept thread is gone.
    for (std::thread& thread : m_connection_threads) {
      thread.join();
    }
    ::close(m_listen_fd);
    ::close(m_wake[0]);
    ::close(m_wake[1]);
  }

  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  std::uint16_t port() const { return m_port; }
  /// "127.0.0.1:PORT", a registry host name.
  std::string host() const { return "127.0.0.1:" + std::to_string(m_port); }
  /// "http://127.0.0.1:PORT" + path.
  std::string url(std::string_view path = "/") const {
    return "http://" + host() + std::string(path);
  }

  /// TCP connections accepted so far.
  std::size_t connections_accepted() const { return m_connections; }
  /// Every complete request received so far, in arrival order.
  std::vector<HttpServerRequest> requests() const {
    std::lock_guard lock(m_requests_mutex);
    return m_requests;
  }

private:
  // Waits until `fd` is readable or the server stops. False when stopping.
  bool wait_readable(int fd) const {
    pollfd fds[2] = {{fd, POLLIN, 0}, {m_wake[0], POLLIN, 0}};
    for (;;) {
      const int ready = ::poll(fds, 2, -1);
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      return ready > 0 && fds[1].revents == 0;
    }
  }

  // Sleeps for `delay` unless the server stops first. False when stopping.
  bool sleep_for(std::chrono::milliseconds delay) const {
    pollfd wake{m_wake[0], POLLIN, 0};
    return ::poll(&wake, 1, static_cast<int>(delay.count())) == 0;
  }

  void accept_loop() {
    while (wait_readable(m_listen_fd)) {
      const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        continue;
      }
      // A client that stops reading must not hang the destructor in send().
      const timeval send_timeout{10, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
      const std::size_t index = ++m_connections;
      m_connection_threads.emplace_back([this, fd, index] {
        serve_connection(fd, index);
        ::close(fd);
      });
    }
  }

  struct Connection {
    int fd;
    std::string buffer; // received, not yet consumed

    // Reads more bytes into `buffer`. False on EOF, error or stop.
    bool fill(const LoopbackHttpServer& server) {
      if (!server.wait_readable(fd)) {
        return false;
      }
      char chunk[16384];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        return false;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    // The next CRLF-terminated line, without the CRLF.
    std::optional<std::string> line(const LoopbackHttpServer& server) {
      std::size_t end;
      while ((end = buffer.find("\r\n")) == std::string::npos) {
        if (buffer.size() > k_max_head || !fill(server)) {
          return std::nullopt;
        }
      }
      std::string text = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      return text;
    }
    std::optional<std::string> bytes(const LoopbackHttpServer& server, std::size_t count) {
      while (buffer.size() < count) {
        if (!fill(server)) {
          return std::nullopt;
        }
      }
      std::string text = buffer.substr(0, count);
      buffer.erase(0, count);
      return text;
    }
    bool send_all(std::string_view data) const {
      while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n <= 0) {
          return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
      }
      return true;
    }
  };

  static constexpr std::size_t k_max_head = 1 << 20;

  void serve_connection(int fd, std::size_t index) {
    Connection connection{fd, {}};
    for (;;) {
      if (connection.buffer.empty() && !connection.fill(*this)) {
        return;
      }
      if (!std::isupper(static_cast<unsigned char>(connection.buffer.front()))) {
        connection.send_all("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                            "Connection: close\r\n\r\n");
        return;
      }
      std::optional<HttpServerRequest> request = read_request(connection);
      if (!request) {
        return;
      }
      request->connection = index;
      HttpServerResponse response;
      {
        std::lock_guard lock(m_requests_mutex);
        m_requests.push_back(*request);
      }
      {
        std::lock_guard lock(m_handler_mutex);
        response = m_handler(*request);
      }
      if (response.delay.count() > 0 && !sleep_for(response.delay)) {
        return;
      }
      const bool close = !m_options.keep_alive || request->header("Connection") == "close" ||
                         response.close_after_body_bytes.has_value();
      if (!send_response(connection, *request, response, close) || close) {
        return;
      }
    }
  }

  std::optional<HttpServerRequest> read_request(Connection& connection) {
    HttpServerRequest request;
    const std::optional<std::string> request_line = connection.line(*this);
    if (!request_line) {
      return std::nullopt;
    }
    const std::size_t first_space = request_line->find(' ');
    const std::size_t second_space = request_line->rfind(' ');
    if (first_space == std::string::npos || second_space == first_space) {
      return std::nullopt;
    }
    request.method = request_line->substr(0, first_space);
    request.target = request_line->substr(first_space + 1, second_space - first_space - 1);
    for (;;) {
      const std::optional<std::string> header_line = connection.line(*this);
      if (!header_line) {
        return std::nullopt;
      }
      if (header_line->empty()) {
        break;
      }
      const std::size_t colon = header_line->find(':');
      if (colon == std::string::npos) {
        return std::nullopt;
      }
      std::string value = header_line->substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t") + 1);
      request.headers.emplace_back(header_line->substr(0, colon), std::move(value));
    }
    if (request.header("Expect") == "100-continue" &&
        !connection.send_all("HTTP/1.1 100 Continue\r\n\r\n")) {
      return std::nullopt;
    }
    if (request.header("Transfer-Encoding") == "chunked") {
      request.chunked = true;
      for (;;) {
        const std::optional<std::string> size_line = connection.line(*this);
        if (!size_line) {
          return std::nullopt;
        }
        // from_chars stops at a ";ext" chunk extension, which is ignored.
        const std::optional<std::size_t> size = loopback_http_detail::parse_size(*size_line, 16);
        if (!size) {
          return std::nullopt;
        }
        if (*size == 0) {
          break;
        }
        const std::optional<std::string> data = connection.bytes(*this, *size + 2);
        if (!data) {
          return std::nullopt;
        }
        request.body.append(*data, 0, *size);
      }
      for (;;) { // trailer fields, up to the empty line
        const std::optional<std::string> trailer = connection.line(*this);
        if (!trailer) {
          return std::nullopt;
        }
        if (trailer->empty()) {
          break;
        }
      }
    } else if (const auto length = request.header("Content-Length")) {
      const std::optional<std::size_t> size = loopback_http_detail::parse_size(*length, 10);
      std::optional<std::string> body;
      if (size) {
        body = connection.bytes(*this, *size);
      }
      if (!body) {
        return std::nullopt;
      }
      request.body = std::move(*body);
    }
    return request;
  }

  static bool send_response(Connection& connection, const HttpServerRequest& request,
                            const HttpServerResponse& response, bool close) {
    std::string head;
    if (response.interim_continue) {
      head += "HTTP/1.1 100 Continue\r\n";
      for (const auto& [name, value] : *response.interim_continue) {
        head += name + ": " + value + "\r\n";
      }
      head += "\r\n";
    }
    head += "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) + "\r\n";
    bool has_length = false;
    for (const auto& [name, value] : response.headers) {
      head += name + ": " + value + "\r\n";
      has_length = has_length || loopback_http_detail::same_name(name, "Content-Length");
    }
    if (!has_length) {
      head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    }
    if (close) {
      head += "Connection: close\r\n";
    }
    head += "\r\n";
    if (!connection.send_all(head)) {
      return false;
    }
    if (request.method == "HEAD") {
      return true;
    }
    std::string_view body = response.body;
    if (response.close_after_body_bytes) {
      body = body.substr(0, *response.close_after_body_bytes);
    }
    return connection.send_all(body);
  }

  static std::string reason(int status) {
    switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
    }
  }

  Handler m_handler;
  HttpServerOptions m_options;
  int m_listen_fd = -1;
  int m_wake[2] = {-1, -1};
  std::uint16_t m_port = 0;
  std::atomic<std::size_t> m_connections{0};
  std::thread m_accept_thread;
  std::vector<std::thread> m_connection_threads; // touched by the accept thread, then ~
  std::mutex m_handler_mutex;                    // one handler call at a time
  mutable std::mutex m_requests_mutex;
  std::vector<HttpServerRequest> m_requests;
};

} // namespace minibuild::test
