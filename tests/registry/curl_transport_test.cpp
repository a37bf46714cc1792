// The real libcurl transport against a real HTTP/1.1 server on 127.0.0.1 (no TLS server here:
// HTTPS is covered by the integration tests against docker-registry).
#include "support/loopback_http_server.hpp"
#include "support/temp_dir.hpp"

#include <minibuild/registry/http.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace minibuild;
using namespace minibuild::registry;
using minibuild::test::HttpServerOptions;
using minibuild::test::HttpServerRequest;
using minibuild::test::HttpServerResponse;
using minibuild::test::LoopbackHttpServer;

namespace {

std::unique_ptr<HttpTransport> make_transport(TransportOptions options = {}) {
  Result<std::unique_ptr<HttpTransport>> transport = make_curl_transport(options);
  REQUIRE(transport);
  return std::move(*transport);
}

// Bytes that are not text, so that an off-by-one or a stray NUL shows.
std::string pattern(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  }
  return bytes;
}

HttpRequest get(std::string url) {
  HttpRequest request;
  request.url = std::move(url);
  return request;
}

// Records what the transport hands it: "begin 200" then "write" per call.
class RecordingSink : public BodySink {
public:
  std::optional<Error> fail_begin;
  std::optional<Error> fail_after; ///< returned by the write() that passes `fail_at` bytes
  std::size_t fail_at = 0;

  std::vector<std::string> events;
  std::string bytes;
  std::optional<std::string> content_type_at_begin;

  Result<void> begin(const HttpResponse& response) override {
    events.push_back("begin " + std::to_string(response.status));
    content_type_at_begin = response.headers.get("content-type");
    if (fail_begin) {
      return tl::unexpected(*fail_begin);
    }
    return {};
  }
  Result<void> write(std::span<const char> data) override {
    events.emplace_back("write");
    bytes.append(data.data(), data.size());
    if (fail_after && bytes.size() >= fail_at) {
      return tl::unexpected(*fail_after);
    }
    return {};
  }
};

// Hands out `bytes` at most `step` bytes per read, or fails after `fail_at` bytes.
class SlowSource : public oci::ByteSource {
public:
  SlowSource(std::string bytes, std::size_t step) : m_bytes(std::move(bytes)), m_step(step) {}
  std::optional<std::size_t> fail_at;
  std::size_t reads = 0;

  Result<std::size_t> read(std::span<char> buffer) override {
    ++reads;
    if (fail_at && m_offset >= *fail_at) {
      return fail(Code::io, "read layer.tar: Input/output error");
    }
    const std::size_t count = std::min({buffer.size(), m_step, m_bytes.size() - m_offset});
    std::copy_n(m_bytes.data() + m_offset, count, buffer.data());
    m_offset += count;
    return count;
  }

private:
  std::string m_bytes;
  std::size_t m_step;
  std::size_t m_offset = 0;
};

// A port nothing listens on: a server's, after it is gone.
std::uint16_t closed_port() {
  LoopbackHttpServer server([](const HttpServerRequest&) { return HttpServerResponse{}; });
  return server.port();
}

// The request as the server recorded it; the transport must never send a chunked body or ask
// for 100-continue.
void check_framing(const HttpServerRequest& received, std::size_t size) {
  CHECK_FALSE(received.chunked);
  CHECK_FALSE(received.header("Transfer-Encoding"));
  CHECK_FALSE(received.header("Expect"));
  CHECK(received.header("Content-Length") == std::to_string(size));
}

} // namespace

TEST_CASE("transport: GET collects the body, status and headers", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest& request) {
    return HttpServerResponse{.status = 200,
                              .headers = {{"Content-Type", "application/json"},
                                          {"Docker-Distribution-API-Version", "registry/2.0"}},
                              .body = "{\"path\":\"" + request.target + "\"}"};
  });
  auto transport = make_transport({.user_agent = "minibuild-test/1"});
  HttpRequest request = get(server.url("/v2/?n=1"));
  request.headers.add("Accept", "application/json");
  request.headers.add("X-Empty", "");

  Result<HttpResponse> response = transport->send(request, nullptr);
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->body == "{\"path\":\"/v2/?n=1\"}");
  CHECK_FALSE(response->body_truncated);
  CHECK(response->headers.get("content-type") == "application/json");
  CHECK(response->headers.get("DOCKER-DISTRIBUTION-API-VERSION") == "registry/2.0");
  CHECK(response->headers.get("Content-Length") == "19");

  const std::vector<HttpServerRequest> received = server.requests();
  REQUIRE(received.size() == 1);
  CHECK(received[0].method == "GET");
  CHECK(received[0].target == "/v2/?n=1");
  CHECK(received[0].header("Accept") == "application/json");
  CHECK(received[0].header("X-Empty") == "");
  CHECK(received[0].header("User-Agent") == "minibuild-test/1");
  CHECK(received[0].body.empty());
}

TEST_CASE("transport: repeated header fields are all kept", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) {
    return HttpServerResponse{.status = 401,
                              .headers = {{"www-authenticate", "Bearer realm=\"https://auth\""},
                                          {"X-Other", "1"},
                                          {"WWW-Authenticate", "Basic realm=\"registry\""}}};
  });
  auto transport = make_transport();
  Result<HttpResponse> response = transport->send(get(server.url("/v2/")), nullptr);
  REQUIRE(response);
  CHECK(response->status == 401);
  CHECK(response->headers.get_all("WWW-Authenticate") ==
        std::vector<std::string>{"Bearer realm=\"https://auth\"", "Basic realm=\"registry\""});
  CHECK(response->headers.get("x-other") == "1");
}

TEST_CASE("transport: an interim 100 Continue's fields are dropped", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) {
    return HttpServerResponse{.status = 201,
                              .headers = {{"Location", "/final"}},
                              .body = "done",
                              .interim_continue = {{{"Location", "/interim"}, {"X-Interim", "1"}}}};
  });
  auto transport = make_transport();
  HttpRequest request = get(server.url("/v2/a/blobs/uploads/1"));
  request.method = "PUT";
  request.body = "payload";
  RecordingSink sink;
  Result<HttpResponse> response = transport->send(request, &sink);
  REQUIRE(response);
  CHECK(response->status == 201);
  CHECK(response->headers.get_all("Location") == std::vector<std::string>{"/final"});
  CHECK_FALSE(response->headers.get("X-Interim"));
  CHECK(sink.events.front() == "begin 201");
  CHECK(sink.bytes == "done");
}

TEST_CASE("transport: a sink receives a 2xx body, begin() first", "[transport]") {
  const std::string blob = pattern(3 << 20); // several write callbacks
  LoopbackHttpServer server([&](const HttpServerRequest&) {
    return HttpServerResponse{.headers = {{"Content-Type", "application/octet-stream"}},
                              .body = blob};
  });
  auto transport = make_transport({.max_buffered_body = 1024}); // sinks are not capped
  RecordingSink sink;
  Result<HttpResponse> response = transport->send(get(server.url("/v2/a/blobs/x")), &sink);
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->body.empty());
  CHECK_FALSE(response->body_truncated);
  REQUIRE(sink.events.size() >= 3);
  CHECK(sink.events.front() == "begin 200");
  CHECK(std::count(sink.events.begin(), sink.events.end(), "begin 200") == 1);
  CHECK(sink.content_type_at_begin == "application/octet-stream");
  CHECK(sink.bytes.size() == blob.size());
  CHECK(sink.bytes == blob);
}

TEST_CASE("transport: a 2xx without a body still opens the sink", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) {
    return HttpServerResponse{.status = 201, .headers = {{"Location", "/v2/a/blobs/x"}}};
  });
  auto transport = make_transport();
  RecordingSink sink;
  Result<HttpResponse> response = transport->send(get(server.url("/v2/a/blobs/x")), &sink);
  REQUIRE(response);
  CHECK(response->status == 201);
  CHECK(sink.events == std::vector<std::string>{"begin 201"});
}

TEST_CASE("transport: a non-2xx body is collected even with a sink", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) {
    return HttpServerResponse{.status = 404, .body = R"({"errors":[{"code":"BLOB_UNKNOWN"}]})"};
  });
  auto transport = make_transport();
  RecordingSink sink;
  Result<HttpResponse> response = transport->send(get(server.url("/v2/a/blobs/x")), &sink);
  REQUIRE(response);
  CHECK(response->status == 404);
  CHECK(response->body == R"({"errors":[{"code":"BLOB_UNKNOWN"}]})");
  CHECK(sink.events.empty());
}

TEST_CASE("transport: a sink's error aborts the transfer and is returned as it is", "[transport]") {
  const std::string blob = pattern(4 << 20);
  LoopbackHttpServer server(
      [&](const HttpServerRequest&) { return HttpServerResponse{.body = blob}; });
  auto transport = make_transport();

  SECTION("from write()") {
    RecordingSink sink;
    sink.fail_after = Error(Code::corrupt, "blob sha256:abc: digest mismatch");
    sink.fail_at = 1;
    Result<HttpResponse> response = transport->send(get(server.url("/blob")), &sink);
    REQUIRE_FALSE(response);
    CHECK(response.error().code() == Code::corrupt);
    CHECK(response.error().what() == "blob sha256:abc: digest mismatch");
    CHECK(std::count(sink.events.begin(), sink.events.end(), "write") == 1);
    CHECK(sink.bytes.size() < blob.size());
  }
  SECTION("from begin()") {
    RecordingSink sink;
    sink.fail_begin = Error(Code::corrupt, "unexpected Content-Type");
    Result<HttpResponse> response = transport->send(get(server.url("/blob")), &sink);
    REQUIRE_FALSE(response);
    CHECK(response.error().what() == "unexpected Content-Type");
    CHECK(sink.events == std::vector<std::string>{"begin 200"});
  }
  // The transport is still usable afterwards.
  Result<HttpResponse> again = transport->send(get(server.url("/blob")), nullptr);
  REQUIRE(again);
  CHECK(again->body.size() == blob.size());
}

TEST_CASE("transport: HEAD returns headers and no body", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) {
    return HttpServerResponse{.headers = {{"Docker-Content-Digest", "sha256:abc"}},
                              .body = std::string(1234, 'x')};
  });
  auto transport = make_transport();
  HttpRequest request = get(server.url("/v2/a/manifests/latest"));
  request.method = "HEAD";
  RecordingSink sink;
  Result<HttpResponse> response = transport->send(request, &sink);
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->body.empty());
  CHECK(response->headers.get("Content-Length") == "1234");
  CHECK(response->headers.get("docker-content-digest") == "sha256:abc");
  CHECK(sink.events == std::vector<std::string>{"begin 200"});
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].method == "HEAD");

  // The connection stays usable after a HEAD.
  Result<HttpResponse> next = transport->send(get(server.url("/v2/")), nullptr);
  REQUIRE(next);
  CHECK(next->body.size() == 1234);
  CHECK(server.connections_accepted() == 1);
}

TEST_CASE("transport: request bodies arrive intact with Content-Length", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest& request) {
    return HttpServerResponse{.status = 202, .body = request.method};
  });
  auto transport = make_transport();
  const std::string small = pattern(1500) + std::string(3, '\0');
  const std::string large = pattern((2 << 20) + 17);

  for (const std::string method : {"PUT", "PATCH", "POST"}) {
    CAPTURE(method);
    SECTION("string body, " + method) {
      HttpRequest request = get(server.url("/v2/a/blobs/uploads/1"));
      request.method = method;
      request.body = small;
      request.headers.add("Content-Type", "application/vnd.oci.image.manifest.v1+json");
      Result<HttpResponse> response = transport->send(request, nullptr);
      REQUIRE(response);
      CHECK(response->status == 202);
      CHECK(response->body == method);
      const auto received = server.requests();
      REQUIRE(received.size() == 1);
      CHECK(received[0].method == method);
      CHECK(received[0].body == small);
      CHECK(received[0].header("Content-Type") == "application/vnd.oci.image.manifest.v1+json");
      check_framing(received[0], small.size());
    }
    SECTION("streamed body, " + method) {
      SlowSource source(large, 100'000);
      HttpRequest request = get(server.url("/v2/a/blobs/uploads/1"));
      request.method = method;
      request.streamed_body = StreamedBody{.source = &source, .size = large.size()};
      request.headers.add("Content-Type", "application/octet-stream");
      Result<HttpResponse> response = transport->send(request, nullptr);
      REQUIRE(response);
      CHECK(response->status == 202);
      const auto received = server.requests();
      REQUIRE(received.size() == 1);
      CHECK(received[0].method == method);
      CHECK(received[0].body.size() == large.size());
      CHECK(received[0].body == large);
      CHECK(received[0].header("Content-Type") == "application/octet-stream");
      check_framing(received[0], large.size());
    }
    SECTION("empty body, " + method) {
      HttpRequest request = get(server.url("/v2/a/blobs/uploads/?digest=sha256:abc"));
      request.method = method;
      Result<HttpResponse> response = transport->send(request, nullptr);
      REQUIRE(response);
      const auto received = server.requests();
      REQUIRE(received.size() == 1);
      CHECK(received[0].method == method);
      CHECK(received[0].target == "/v2/a/blobs/uploads/?digest=sha256:abc");
      CHECK(received[0].body.empty());
      // No curl default (application/x-www-form-urlencoded) sneaks in.
      CHECK_FALSE(received[0].header("Content-Type"));
      check_framing(received[0], 0);
    }
  }
  SECTION("DELETE") {
    HttpRequest request = get(server.url("/v2/a/manifests/sha256:abc"));
    request.method = "DELETE";
    Result<HttpResponse> response = transport->send(request, nullptr);
    REQUIRE(response);
    CHECK(response->body == "DELETE");
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0].method == "DELETE");
    CHECK(server.requests()[0].body.empty());
  }
}

TEST_CASE("transport: a failing request body aborts the request with its error", "[transport]") {
  LoopbackHttpServer server(
      [](const HttpServerRequest&) { return HttpServerResponse{.status = 201}; });
  auto transport = make_transport();
  SECTION("the source fails") {
    SlowSource source(pattern(1 << 20), 10'000);
    source.fail_at = 50'000;
    HttpRequest request = get(server.url("/v2/a/blobs/uploads/1"));
    request.method = "PUT";
    request.streamed_body = StreamedBody{.source = &source, .size = 1 << 20};
    Result<HttpResponse> response = transport->send(request, nullptr);
    REQUIRE_FALSE(response);
    CHECK(response.error().what() == "read layer.tar: Input/output error");
  }
  SECTION("the source ends early") {
    SlowSource source(pattern(1000), 10'000);
    HttpRequest request = get(server.url("/v2/a/blobs/uploads/1"));
    request.method = "PATCH";
    request.streamed_body = StreamedBody{.source = &source, .size = 5000};
    Result<HttpResponse> response = transport->send(request, nullptr);
    REQUIRE_FALSE(response);
    CHECK(response.error().code() == Code::io);
    CHECK(response.error().what() == "request body ended after 1000 of 5000 bytes");
  }
  // Nothing was answered: the server never saw a whole request.
  CHECK(server.requests().empty());
}

TEST_CASE("transport: redirects are returned, not followed", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) {
    return HttpServerResponse{.status = 307, .headers = {{"Location", "/elsewhere"}}};
  });
  auto transport = make_transport();
  Result<HttpResponse> response = transport->send(get(server.url("/v2/a/blobs/x")), nullptr);
  REQUIRE(response);
  CHECK(response->status == 307);
  CHECK(response->headers.get("location") == "/elsewhere");
  CHECK(server.requests().size() == 1);
}

TEST_CASE("transport: connection refused is a network error", "[transport]") {
  auto transport = make_transport();
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v2/";
  HttpRequest request = get(url);
  request.headers.add("Authorization", "Bearer top-secret-token");
  Result<HttpResponse> response = transport->send(request, nullptr);
  REQUIRE_FALSE(response);
  const Error& error = response.error();
  CHECK(error.code() == Code::network);
  CHECK(error.sys_errno() == ECONNREFUSED);
  CHECK(error.sys_errno() != EPROTO);
  CHECK(error.sys_errno() != EBADMSG);
  CHECK(error.what().starts_with("GET " + url + ": "));
  CHECK(error.what().find("top-secret-token") == std::string::npos);
}

TEST_CASE("transport: credentials in the URL stay out of messages", "[transport]") {
  auto transport = make_transport();
  const std::string port = std::to_string(closed_port());
  Result<HttpResponse> response =
      transport->send(get("http://user:hunter2@127.0.0.1:" + port + "/v2/"), nullptr);
  REQUIRE_FALSE(response);
  CHECK(response.error().what().starts_with("GET http://127.0.0.1:" + port + "/v2/: "));
  CHECK(response.error().what().find("hunter2") == std::string::npos);
}

TEST_CASE("transport: https:// to a plain HTTP server is EPROTO", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) { return HttpServerResponse{}; });
  auto transport = make_transport();
  Result<HttpResponse> response =
      transport->send(get("https://" + server.host() + "/v2/"), nullptr);
  REQUIRE_FALSE(response);
  CHECK(response.error().code() == Code::network);
  CHECK(response.error().sys_errno() == EPROTO);
  CHECK(response.error().what().starts_with("GET https://" + server.host() + "/v2/: "));
  // Extra CAs do not change that (and are accepted by libcurl as a CA blob).
  if (std::filesystem::exists("/etc/ssl/certs/ca-certificates.crt")) {
    HttpRequest with_ca = get("https://" + server.host() + "/v2/");
    with_ca.tls.ca_files = {"/etc/ssl/certs/ca-certificates.crt"};
    Result<HttpResponse> again = transport->send(with_ca, nullptr);
    REQUIRE_FALSE(again);
    CHECK(again.error().sys_errno() == EPROTO);
  }
  // The fallback the caller then makes works.
  Result<HttpResponse> plain = transport->send(get(server.url("/v2/")), nullptr);
  REQUIRE(plain);
  CHECK(plain->status == 200);
}

TEST_CASE("transport: an unusable CA file is a clear error", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) { return HttpServerResponse{}; });
  auto transport = make_transport();
  HttpRequest request = get("https://" + server.host() + "/v2/");
  request.tls.ca_files = {"/nonexistent/minibuild-test-ca.crt"};
  Result<HttpResponse> response = transport->send(request, nullptr);
  REQUIRE_FALSE(response);
  CHECK(response.error().code() == Code::not_found);
  CHECK(response.error().what().find("GET https://" + server.host() + "/v2/") != std::string::npos);
  CHECK(response.error().what().find("\"/nonexistent/minibuild-test-ca.crt\"") !=
        std::string::npos);
  CHECK(server.connections_accepted() == 0);

  minibuild::test::TempDir dir("transport");
  std::ofstream(dir / "not-a-ca.crt") << "hello\n"; // readable, but no certificate in it
  request.tls.ca_files = {dir / "not-a-ca.crt"};
  Result<HttpResponse> not_pem = transport->send(request, nullptr);
  REQUIRE_FALSE(not_pem);
  CHECK(not_pem.error().what().find("\"" + dir / "not-a-ca.crt" + "\" holds no PEM certificate") !=
        std::string::npos);
}

TEST_CASE("transport: a missing client certificate is a clear error", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) { return HttpServerResponse{}; });
  auto transport = make_transport();
  minibuild::test::TempDir dir("transport");
  std::ofstream(dir / "client.key") << "key\n";
  HttpRequest request = get("https://" + server.host() + "/v2/");
  request.tls.client_cert_file = dir / "client.cert";
  request.tls.client_key_file = dir / "client.key";
  Result<HttpResponse> response = transport->send(request, nullptr);
  REQUIRE_FALSE(response);
  CHECK(response.error().code() == Code::not_found);
  CHECK(response.error().what().find("\"" + dir / "client.cert" + "\"") != std::string::npos);
  CHECK(server.connections_accepted() == 0);
}

TEST_CASE("transport: a body cut short by the server is a network error", "[transport]") {
  const std::string blob = pattern(100'000);
  LoopbackHttpServer server([&](const HttpServerRequest&) {
    return HttpServerResponse{.body = blob, .close_after_body_bytes = 40'000};
  });
  auto transport = make_transport();
  SECTION("collected") {
    Result<HttpResponse> response = transport->send(get(server.url("/blob")), nullptr);
    REQUIRE_FALSE(response);
    CHECK(response.error().code() == Code::network);
    CHECK(response.error().sys_errno() == ECONNRESET);
  }
  SECTION("streamed to a sink") {
    RecordingSink sink;
    Result<HttpResponse> response = transport->send(get(server.url("/blob")), &sink);
    REQUIRE_FALSE(response);
    CHECK(response.error().code() == Code::network);
    CHECK(sink.bytes == blob.substr(0, 40'000));
  }
}

TEST_CASE("transport: collected bodies are cut at max_buffered_body", "[transport]") {
  const std::string page = pattern(100'000);
  LoopbackHttpServer server([&](const HttpServerRequest& request) {
    return HttpServerResponse{.status = request.target == "/ok" ? 200 : 500,
                              .body = request.target == "/exact" ? page.substr(0, 4096) : page};
  });
  auto transport = make_transport({.max_buffered_body = 4096});
  for (const char* target : {"/ok", "/error"}) {
    CAPTURE(target);
    Result<HttpResponse> response = transport->send(get(server.url(target)), nullptr);
    REQUIRE(response);
    CHECK(response->body == page.substr(0, 4096));
    CHECK(response->body_truncated);
  }
  Result<HttpResponse> exact = transport->send(get(server.url("/exact")), nullptr);
  REQUIRE(exact);
  CHECK(exact->status == 500);
  CHECK(exact->body.size() == 4096);
  CHECK_FALSE(exact->body_truncated);
}

TEST_CASE("transport: sequential requests reuse one connection", "[transport]") {
  LoopbackHttpServer server(
      [](const HttpServerRequest& request) { return HttpServerResponse{.body = request.target}; });
  auto transport = make_transport();
  for (int i = 0; i < 20; ++i) {
    HttpRequest request = get(server.url("/v2/" + std::to_string(i)));
    if (i % 5 == 4) {
      request.method = "PUT";
      request.body = "body";
    }
    Result<HttpResponse> response = transport->send(request, nullptr);
    REQUIRE(response);
    CHECK(response->body == "/v2/" + std::to_string(i));
  }
  CHECK(server.requests().size() == 20);
  CHECK(server.connections_accepted() == 1);
}

TEST_CASE("transport: a server without keep-alive gets a connection per request", "[transport]") {
  LoopbackHttpServer server(
      [](const HttpServerRequest&) { return HttpServerResponse{.body = "x"}; },
      HttpServerOptions{.keep_alive = false});
  auto transport = make_transport();
  for (int i = 0; i < 3; ++i) {
    Result<HttpResponse> response = transport->send(get(server.url("/")), nullptr);
    REQUIRE(response);
    CHECK(response->body == "x");
  }
  CHECK(server.connections_accepted() == 3);
}

TEST_CASE("transport: concurrent sends from several threads", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest& request) {
    return HttpServerResponse{.body = request.target + ":" + request.body};
  });
  auto transport = make_transport();
  constexpr int k_threads = 4;
  constexpr int k_requests = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_requests; ++i) {
        const std::string name = std::to_string(t) + "-" + std::to_string(i);
        HttpRequest request = get(server.url("/" + name));
        std::string streamed_bytes = pattern(10'000 + i) + name;
        SlowSource source(streamed_bytes, 4096);
        if (i % 2 == 1) {
          request.method = "PATCH";
          request.streamed_body = StreamedBody{.source = &source, .size = streamed_bytes.size()};
        }
        Result<HttpResponse> response = transport->send(request, nullptr);
        const std::string expected = "/" + name + ":" + (i % 2 == 1 ? streamed_bytes : "");
        if (!response || response->status != 200 || response->body != expected) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  CHECK(failures == 0);
  CHECK(server.requests().size() == k_threads * k_requests);
  // Handles (and their connections) are pooled: at most one connection per thread.
  CHECK(server.connections_accepted() <= k_threads);
}

TEST_CASE("transport: a stalled transfer is aborted by the low-speed limit", "[transport]") {
  LoopbackHttpServer server([](const HttpServerRequest&) {
    return HttpServerResponse{.body = "late", .delay = std::chrono::milliseconds(5000)};
  });
  auto transport =
      make_transport({.low_speed_bytes = 1, .low_speed_time = std::chrono::seconds(1)});
  const auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> response = transport->send(get(server.url("/")), nullptr);
  REQUIRE_FALSE(response);
  CHECK(response.error().code() == Code::network);
  CHECK(response.error().sys_errno() == ETIMEDOUT);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(4500));
}

TEST_CASE("transport: URLs and methods it cannot send", "[transport]") {
  auto transport = make_transport();
  Result<HttpResponse> ftp = transport->send(get("ftp://127.0.0.1/x"), nullptr);
  REQUIRE_FALSE(ftp);
  CHECK(ftp.error().code() == Code::usage);
  HttpRequest options = get("http://127.0.0.1:1/");
  options.method = "OPTIONS";
  Result<HttpResponse> refused = transport->send(options, nullptr);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::usage);
  Result<HttpResponse> malformed = transport->send(get("http://[::1:5000/v2/"), nullptr);
  REQUIRE_FALSE(malformed);
  CHECK(malformed.error().code() == Code::usage);
}
