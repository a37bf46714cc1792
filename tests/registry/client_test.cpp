#include "support/scripted_transport.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/client.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

using namespace minibuild;
using namespace minibuild::registry;
using minibuild::test::make_response;
using minibuild::test::ScriptedTransport;
using std::chrono::milliseconds;

namespace {

const std::string k_registry = "https://registry.example";
const std::string k_manifest =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})";

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

Error network_error(int sys_errno, std::string message) {
  return Error::from_errno(sys_errno, std::move(message)).with_code(Code::network);
}

ClientOptions recording_options(std::vector<milliseconds>& sleeps, std::vector<std::string>& log,
                                ClientOptions options = {}) {
  options.sleep = [&sleeps](milliseconds delay) { sleeps.push_back(delay); };
  options.random_unit = [] { return 0.5; };
  options.log = [&log](std::string_view line) { log.emplace_back(line); };
  return options;
}

HostSettings registry_host(std::string host = "registry.example", bool allow_plain_http = false) {
  HostSettings settings;
  settings.host = std::move(host);
  settings.allow_plain_http = allow_plain_http;
  return settings;
}

// A ScriptedTransport, a real Authenticator over it and a client with recorded sleeps and log.
struct Harness {
  explicit Harness(ScriptedTransport::Handler handler, ClientOptions options = {},
                   HostSettings host = registry_host())
      : transport(std::move(handler)),
        auth(
            transport,
            [this](std::string_view) -> Result<std::optional<Credentials>> { return credentials; }),
        client(transport, auth, std::move(host), "registry.example",
               recording_options(sleeps, log, std::move(options))) {}

  std::vector<HttpRequest> requests() const { return transport.requests(); }

  std::optional<Credentials> credentials;
  ScriptedTransport transport;
  Authenticator auth;
  std::vector<milliseconds> sleeps;
  std::vector<std::string> log;
  RegistryClient client;
};

HttpResponse manifest_response(const std::string& bytes = k_manifest,
                               std::string content_type = std::string(oci::k_oci_manifest)) {
  return make_response(200, bytes,
                       {{"Content-Type", std::move(content_type)},
                        {"Docker-Content-Digest", oci::sha256_of(bytes).to_string()}});
}

const char* const k_unauthorized_body =
    R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";

oci::Descriptor blob_of(const std::string& content) {
  return oci::make_descriptor(std::string(oci::k_oci_layer_tar_gzip), content);
}

} // namespace

TEST_CASE("get_manifest sends Accept and checks the Docker-Content-Digest", "[client]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> {
    return manifest_response(k_manifest, std::string(oci::k_oci_manifest) + "; charset=utf-8");
  });
  auto fetched = h.client.get_manifest("library/alpine", "latest");
  REQUIRE(fetched);
  CHECK(fetched->bytes == k_manifest);
  CHECK(fetched->media_type == oci::k_oci_manifest);
  CHECK(fetched->digest == oci::sha256_of(k_manifest));

  const auto requests = h.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "GET");
  CHECK(requests[0].url == k_registry + "/v2/library/alpine/manifests/latest");
  const std::string accept = requests[0].headers.get("Accept").value_or("");
  for (std::string_view type : {oci::k_oci_index, oci::k_oci_manifest, oci::k_docker_manifest_list,
                                oci::k_docker_manifest}) {
    CHECK(accept.find(type) != std::string::npos);
  }
  CHECK(!requests[0].headers.get("Authorization")); // no challenge seen yet: anonymous
}

TEST_CASE("get_manifest refuses a Docker-Content-Digest that does not match", "[client]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(200, k_manifest,
                         {{"Content-Type", std::string(oci::k_oci_manifest)},
                          {"Docker-Content-Digest", oci::sha256_of("other").to_string()}});
  });
  auto fetched = h.client.get_manifest("library/alpine", "latest");
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::corrupt);
  CHECK_THAT(fetched.error().what(), Catch::Contains("registry.example/library/alpine:latest") &&
                                         Catch::Contains("Docker-Content-Digest"));
  CHECK(h.requests().size() == 1); // corrupt content is not retried here
}

TEST_CASE("get_manifest by digest verifies the bytes", "[client]") {
  const std::string good = oci::sha256_of(k_manifest).to_string();
  Harness h([](const HttpRequest&) -> Result<HttpResponse> {
    // No Docker-Content-Digest: the requested digest alone decides.
    return make_response(200, k_manifest, {{"Content-Type", std::string(oci::k_oci_manifest)}});
  });
  auto fetched = h.client.get_manifest("library/alpine", good);
  REQUIRE(fetched);
  CHECK(fetched->digest.to_string() == good);
  CHECK(h.requests()[0].url == k_registry + "/v2/library/alpine/manifests/" + good);

  const std::string other = oci::sha256_of("something else").to_string();
  auto mismatch = h.client.get_manifest("library/alpine", other);
  REQUIRE(!mismatch);
  CHECK(mismatch.error().code() == Code::corrupt);
  CHECK_THAT(mismatch.error().what(), Catch::Contains(other) && Catch::Contains(good));
}

TEST_CASE("get_manifest sniffs the media type when Content-Type is missing", "[client]") {
  const std::string index = R"({"schemaVersion":2,"mediaType":")" + std::string(oci::k_oci_index) +
                            R"(","manifests":[]})";
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> { return make_response(200, index); });
  auto fetched = h.client.get_manifest("library/alpine", "latest");
  REQUIRE(fetched);
  CHECK(fetched->media_type == oci::k_oci_index);
  CHECK(fetched->digest == oci::sha256_of(index));
}

TEST_CASE("get_manifest refuses Docker schema 1", "[client]") {
  const std::string schema1 = R"({"schemaVersion":1,"name":"old","tag":"v1","fsLayers":[]})";
  std::string content_type = GENERATE(std::string(oci::k_docker_schema1_signed_manifest),
                                      std::string(oci::k_docker_schema1_manifest),
                                      std::string("application/json"), std::string());
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
    // A signed manifest's Docker-Content-Digest covers the payload only: it must not turn the
    // refusal into a digest error.
    HttpResponse response =
        make_response(200, schema1, {{"Docker-Content-Digest", oci::sha256_of("x").to_string()}});
    if (!content_type.empty()) {
      response.headers.add("Content-Type", content_type);
    }
    return response;
  });
  auto fetched = h.client.get_manifest("old", "v1");
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::unsupported);
  CHECK_THAT(fetched.error().what(), Catch::Contains("Docker schema 1 manifest") &&
                                         Catch::Contains("push it again with a current client"));
}

TEST_CASE("get_manifest refuses a manifest over 4 MiB", "[client]") {
  const std::string huge(5 << 20, ' ');
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(200, huge, {{"Content-Type", std::string(oci::k_oci_manifest)}});
  });
  auto fetched = h.client.get_manifest("library/alpine", "latest");
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::corrupt);
  CHECK_THAT(fetched.error().what(), Catch::Contains("4 MiB"));
}

TEST_CASE("a 404 is not_found and quotes the registry's error code", "[client]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(
        404,
        R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]})",
        {{"Content-Type", "application/json"}});
  });
  auto fetched = h.client.get_manifest("library/alpine", "nope");
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::not_found);
  CHECK_THAT(fetched.error().what(),
             Catch::Contains("GET manifest registry.example/library/alpine:nope") &&
                 Catch::Contains("404 MANIFEST_UNKNOWN: manifest unknown"));
  CHECK(h.requests().size() == 1);
  CHECK(h.sleeps.empty());
}

TEST_CASE("a 401 fetches a bearer token and repeats the request", "[client]") {
  Harness h([](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.starts_with("https://auth.example/token")) {
      return make_response(200, R"({"token":"t0k3n","expires_in":300})");
    }
    if (request.headers.get("Authorization") != "Bearer t0k3n") {
      return make_response(
          401, k_unauthorized_body,
          {{"WWW-Authenticate",
            R"(Bearer realm="https://auth.example/token",service="registry.example")"}});
    }
    return manifest_response();
  });
  auto fetched = h.client.get_manifest("library/alpine", "latest");
  REQUIRE(fetched);
  CHECK(fetched->bytes == k_manifest);

  const auto requests = h.requests();
  REQUIRE(requests.size() == 3);
  CHECK(!requests[0].headers.get("Authorization"));
  CHECK_THAT(percent_decode(requests[1].url),
             Catch::StartsWith("https://auth.example/token") &&
                 Catch::Contains("scope=repository:library/alpine:pull") &&
                 !Catch::Contains("push"));
  CHECK(requests[2].url == k_registry + "/v2/library/alpine/manifests/latest");
  CHECK(requests[2].headers.get("Authorization") == "Bearer t0k3n");

  // The token is cached: the next request sends it at once.
  REQUIRE(h.client.get_manifest("library/alpine", "latest"));
  CHECK(h.requests().size() == 4);
  CHECK(h.requests()[3].headers.get("Authorization") == "Bearer t0k3n");
}

TEST_CASE("a second 401 is an auth error naming the repository", "[client]") {
  Harness h([](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.starts_with("https://auth.example/token")) {
      return make_response(200, R"({"token":"weak"})");
    }
    return make_response(
        401, k_unauthorized_body,
        {{"WWW-Authenticate", R"(Bearer realm="https://auth.example/token",service="r")"}});
  });
  auto fetched = h.client.get_manifest("team/private", "latest");
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::auth);
  CHECK_THAT(fetched.error().what(), Catch::Contains("pull access to team/private") &&
                                         Catch::Contains("401 UNAUTHORIZED") &&
                                         !Catch::Contains("weak"));
  CHECK(h.requests().size() == 3); // registry, token, registry: refreshed once only
}

TEST_CASE("ping asks with no scope and reports refused credentials", "[client]") {
  Harness h([](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.starts_with("https://auth.example/token")) {
      return make_response(200, R"({"token":"t"})");
    }
    if (request.headers.get("Authorization") == "Bearer t") {
      return make_response(200, "{}");
    }
    return make_response(401, k_unauthorized_body,
                         {{"WWW-Authenticate", R"(Bearer realm="https://auth.example/token")"}});
  });
  REQUIRE(h.client.ping());
  const auto requests = h.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].url == k_registry + "/v2/");
  CHECK(percent_decode(requests[1].url).find("scope=") == std::string::npos);
}

TEST_CASE("redirects: Authorization only to the registry's own origin", "[client]") {
  const std::string content = "layer bytes";
  const oci::Descriptor blob = blob_of(content);
  const std::string path = "/v2/library/alpine/blobs/" + blob.digest.to_string();
  std::string location;
  Harness h([&](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.starts_with(k_registry + "/") && !request.headers.get("Authorization")) {
      return make_response(401, k_unauthorized_body,
                           {{"WWW-Authenticate", R"(Basic realm="registry")"}});
    }
    if (request.url == k_registry + path) {
      return make_response(307, {}, {{"Location", location}});
    }
    return make_response(200, content);
  });
  h.credentials = Credentials{"user", "pass", ""};

  SECTION("another host gets no Authorization and no registry TLS settings") {
    location = "https://storage.example/blobs/abc?X-Amz-Signature=secret";
    layer::StringSink sink;
    REQUIRE(h.client.fetch_blob("library/alpine", blob, sink));
    CHECK(sink.bytes() == content);
    const auto requests = h.requests();
    REQUIRE(requests.size() == 3); // anonymous 401, authorized 307, storage
    CHECK(requests[1].headers.get("Authorization") == "Basic dXNlcjpwYXNz");
    CHECK(requests[2].url == location);
    CHECK(!requests[2].headers.get("Authorization"));
  }
  SECTION("another port or scheme of the same host is another origin") {
    location = GENERATE(std::string("https://registry.example:8443/blob"),
                        std::string("http://registry.example/blob"));
    layer::StringSink sink;
    REQUIRE(h.client.fetch_blob("library/alpine", blob, sink));
    const auto requests = h.requests();
    REQUIRE(requests.size() == 3);
    CHECK(!requests[2].headers.get("Authorization"));
  }
  SECTION("the same host keeps it; a relative Location resolves against the request") {
    location = "/v2/library/alpine/blobs/mirror/abc";
    layer::StringSink sink;
    REQUIRE(h.client.fetch_blob("library/alpine", blob, sink));
    const auto requests = h.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[2].url == k_registry + location);
    CHECK(requests[2].headers.get("Authorization") == "Basic dXNlcjpwYXNz");
  }
}

TEST_CASE("a storage host's refusal is not blamed on the credentials", "[client]") {
  Harness h([](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.starts_with(k_registry + "/")) {
      return make_response(307, {}, {{"Location", "https://storage.example/b?sig=secret"}});
    }
    return make_response(403, "<Error><Code>AccessDenied</Code></Error>");
  });
  layer::StringSink sink;
  auto fetched = h.client.fetch_blob("library/alpine", blob_of("x"), sink);
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::network);
  CHECK_THAT(fetched.error().what(), Catch::Contains("storage host storage.example answered 403") &&
                                         !Catch::Contains("secret"));
}

TEST_CASE("redirects stop after 5 hops", "[client]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(302, {}, {{"Location", "/v2/loop"}});
  });
  auto result = h.client.blob_size("library/alpine", oci::sha256_of("x"));
  REQUIRE(!result);
  CHECK(result.error().code() == Code::network);
  CHECK_THAT(result.error().what(), Catch::Contains("more than 5 redirects"));
  CHECK(h.requests().size() == 6);
}

TEST_CASE("a 303 turns the request into a GET without body", "[client]") {
  Harness h([](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.method == "PUT") {
      return make_response(303, {}, {{"Location", "/v2/app/manifests/done"}});
    }
    return make_response(201);
  });
  REQUIRE(h.client.put_manifest("app", "v1", k_manifest, oci::k_oci_manifest));
  const auto requests = h.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1].method == "GET");
  CHECK(requests[1].body.empty());
  CHECK(!requests[1].headers.get("Content-Type"));
}

TEST_CASE("retryable statuses are retried, honouring Retry-After", "[client]") {
  int answered = 0;
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
    if (++answered <= 2) {
      return make_response(503, "busy", {{"Retry-After", "2"}});
    }
    return manifest_response();
  });
  REQUIRE(h.client.get_manifest("library/alpine", "latest"));
  CHECK(h.requests().size() == 3);
  CHECK(h.sleeps == std::vector<milliseconds>{milliseconds(2000), milliseconds(2000)});
  REQUIRE(h.log.size() == 2);
  CHECK_THAT(h.log[0], Catch::Contains("retrying GET manifest registry.example/library/alpine") &&
                           Catch::Contains("503") && Catch::Contains("attempt 2/5"));
  CHECK_THAT(h.log[1], Catch::Contains("attempt 3/5"));
}

TEST_CASE("exhausted retries return the last error with the attempt count", "[client]") {
  Harness h([](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(503, R"({"errors":[{"code":"UNAVAILABLE","message":"try later"}]})");
  });
  auto fetched = h.client.get_manifest("library/alpine", "latest");
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::network);
  CHECK_THAT(fetched.error().what(),
             Catch::Contains("after 5 attempts") && Catch::Contains("503 UNAVAILABLE: try later"));
  CHECK(h.requests().size() == 5);
  // Full jitter with the draw fixed at 0.5: half of 200, 400, 800, 1600 ms.
  CHECK(h.sleeps == std::vector<milliseconds>{milliseconds(100), milliseconds(200),
                                              milliseconds(400), milliseconds(800)});
}

TEST_CASE("transport errors: resets are retried, TLS verification failures are not", "[client]") {
  int calls = 0;
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
    ++calls;
    return fail(network_error(EBADMSG, "TLS handshake with registry.example: certificate"));
  });
  auto fetched = h.client.get_manifest("library/alpine", "latest");
  REQUIRE(!fetched);
  CHECK(fetched.error().sys_errno() == EBADMSG);
  CHECK(calls == 1);
  CHECK(h.sleeps.empty());

  int resets = 0;
  Harness flaky([&](const HttpRequest&) -> Result<HttpResponse> {
    if (++resets == 1) {
      return fail(network_error(ECONNRESET, "receive from registry.example"));
    }
    return manifest_response();
  });
  REQUIRE(flaky.client.get_manifest("library/alpine", "latest"));
  CHECK(resets == 2);
  CHECK(flaky.sleeps.size() == 1);
}

TEST_CASE("https falls back to http only when allowed", "[client]") {
  const auto handler = [](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.starts_with("https://")) {
      return fail(network_error(EPROTO, "TLS handshake with registry.example:5000: not TLS"));
    }
    return make_response(200, "{}");
  };
  SECTION("allowed: switch once and remember") {
    Harness h(handler, {}, registry_host("registry.example:5000", true));
    REQUIRE(h.client.ping());
    REQUIRE(h.client.ping());
    const auto requests = h.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].url == "https://registry.example:5000/v2/");
    CHECK(requests[1].url == "http://registry.example:5000/v2/");
    CHECK(requests[2].url == "http://registry.example:5000/v2/");
  }
  SECTION("not allowed: the error says how to allow it") {
    Harness h(handler, {}, registry_host("registry.example:5000", false));
    auto pinged = h.client.ping();
    REQUIRE(!pinged);
    CHECK(pinged.error().code() == Code::network);
    CHECK_THAT(pinged.error().what(), Catch::Contains("--insecure-registry registry.example:5000"));
    REQUIRE(h.requests().size() == 1);
    CHECK(h.sleeps.empty());
  }
  SECTION("allowed, but https worked before: no downgrade") {
    bool tls_works = true;
    Harness h(
        [&](const HttpRequest& request) -> Result<HttpResponse> {
          if (!tls_works) {
            return handler(request);
          }
          return make_response(200, "{}");
        },
        {}, registry_host("registry.example:5000", true));
    REQUIRE(h.client.ping());
    tls_works = false;
    REQUIRE(!h.client.ping());
    const auto requests = h.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].url.starts_with("https://"));
  }
  SECTION("allowed: any connection failure of https tries http (a proxy that only carries http)") {
    Harness h(
        [](const HttpRequest& request) -> Result<HttpResponse> {
          if (request.url.starts_with("https://")) {
            return fail(network_error(EHOSTUNREACH, "could not resolve registry.example"));
          }
          return make_response(200, "{}");
        },
        {}, registry_host("registry.example:5000", true));
    REQUIRE(h.client.ping());
    const auto requests = h.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].url == "http://registry.example:5000/v2/");
  }
  SECTION("allowed, but the certificate failed: no http") {
    Harness h(
        [](const HttpRequest& request) -> Result<HttpResponse> {
          if (request.url.starts_with("https://")) {
            return fail(network_error(EBADMSG, "certificate verify failed"));
          }
          return make_response(200, "{}");
        },
        {}, registry_host("registry.example:5000", true));
    REQUIRE(!h.client.ping());
    REQUIRE(h.requests().size() == 1);
  }
  SECTION("allowed, http fails too: the error tells both") {
    Harness h(
        [](const HttpRequest&) -> Result<HttpResponse> {
          return fail(network_error(EHOSTUNREACH, "could not resolve registry.example"));
        },
        {}, registry_host("registry.example:5000", true));
    auto pinged = h.client.ping();
    REQUIRE(!pinged);
    CHECK_THAT(pinged.error().what(), Catch::Contains("https failed"));
  }
}

namespace {

// Delivers the first `cut` bytes of the blob, then fails like a reset connection; later
// requests get the rest (206) or, when `honour_range` is false, the whole blob again (200).
class CuttingTransport : public HttpTransport {
public:
  CuttingTransport(std::string blob, std::size_t cut, bool honour_range)
      : m_blob(std::move(blob)), m_cut(cut), m_honour_range(honour_range) {}

  Result<HttpResponse> send(const HttpRequest& request, BodySink* sink) override {
    requests.push_back(request);
    REQUIRE(sink != nullptr);
    const std::string length = std::to_string(m_blob.size());
    if (requests.size() == 1) {
      MB_TRY(sink->begin(make_response(200, {}, {{"Content-Length", length}})));
      MB_TRY(sink->write(std::span<const char>(m_blob.data(), m_cut)));
      return fail(network_error(ECONNRESET, "receive from registry.example"));
    }
    if (!m_honour_range) {
      MB_TRY(sink->begin(make_response(200, {}, {{"Content-Length", length}})));
      MB_TRY(sink->write(std::span<const char>(m_blob.data(), m_blob.size())));
      return make_response(200);
    }
    const std::string range = request.headers.get("Range").value_or("");
    const std::size_t from = std::stoul(range.substr(std::string("bytes=").size()));
    const std::string content_range =
        "bytes " + std::to_string(from) + "-" + std::to_string(m_blob.size() - 1) + "/" + length;
    MB_TRY(sink->begin(make_response(206, {}, {{"Content-Range", content_range}})));
    MB_TRY(sink->write(std::span<const char>(m_blob.data() + from, m_blob.size() - from)));
    return make_response(206);
  }

  std::vector<HttpRequest> requests;

private:
  std::string m_blob;
  std::size_t m_cut;
  bool m_honour_range;
};

} // namespace

TEST_CASE("a broken blob download resumes with Range", "[client]") {
  const std::string content = "0123456789";
  const bool honour_range = GENERATE(true, false);
  CuttingTransport transport(content, 4, honour_range);
  Authenticator auth(transport, [](std::string_view) -> Result<std::optional<Credentials>> {
    return std::nullopt;
  });
  std::vector<milliseconds> sleeps;
  std::vector<std::string> log;
  RegistryClient client(transport, auth, registry_host(), "registry.example",
                        recording_options(sleeps, log));
  layer::StringSink sink;
  std::vector<std::uint64_t> progress;
  REQUIRE(client.fetch_blob("library/alpine", blob_of(content), sink,
                            [&](std::uint64_t done) { progress.push_back(done); }));
  CHECK(sink.bytes() == content); // every byte once, in order
  REQUIRE(transport.requests.size() == 2);
  CHECK(!transport.requests[0].headers.get("Range"));
  CHECK(transport.requests[1].headers.get("Range") == "bytes=4-");
  CHECK(std::is_sorted(progress.begin(), progress.end()));
  CHECK(progress.front() == 4);
  CHECK(progress.back() == 10);
  CHECK(sleeps.size() == 1);
  REQUIRE(log.size() == 1);
  CHECK_THAT(log[0], Catch::Contains("GET blob"));
}

TEST_CASE("a 206 starting elsewhere is refused", "[client]") {
  const std::string content = "0123456789";
  int calls = 0;
  // First answer: 4 bytes then a reset (ScriptedTransport cannot cut, so a tiny transport).
  class Wrong : public HttpTransport {
  public:
    explicit Wrong(int& calls) : m_calls(calls) {}
    Result<HttpResponse> send(const HttpRequest&, BodySink* sink) override {
      if (++m_calls == 1) {
        MB_TRY(sink->begin(make_response(200)));
        MB_TRY(sink->write(std::span<const char>("0123", 4)));
        return fail(network_error(ECONNRESET, "receive"));
      }
      MB_TRY(sink->begin(make_response(206, {}, {{"Content-Range", "bytes 0-9/10"}})));
      return make_response(206);
    }

  private:
    int& m_calls;
  } transport(calls);
  Authenticator auth(transport, [](std::string_view) -> Result<std::optional<Credentials>> {
    return std::nullopt;
  });
  std::vector<milliseconds> sleeps;
  std::vector<std::string> log;
  RegistryClient client(transport, auth, registry_host(), "registry.example",
                        recording_options(sleeps, log));
  layer::StringSink sink;
  auto fetched = client.fetch_blob("library/alpine", blob_of(content), sink);
  REQUIRE(!fetched);
  CHECK_THAT(fetched.error().what(), Catch::Contains("bytes 0-9/10"));
  CHECK(calls == 2);
}

TEST_CASE("fetch_blob refuses more bytes than the descriptor's size", "[client]") {
  Harness h(
      [](const HttpRequest&) -> Result<HttpResponse> { return make_response(200, "0123456789"); });
  oci::Descriptor blob = blob_of("01234");
  layer::StringSink sink;
  auto fetched = h.client.fetch_blob("library/alpine", blob, sink);
  REQUIRE(!fetched);
  CHECK(fetched.error().code() == Code::corrupt);
  CHECK_THAT(fetched.error().what(), Catch::Contains("more than the 5 bytes"));
  CHECK(h.requests().size() == 1);
  CHECK(sink.bytes().empty());
}

TEST_CASE("fetch_blob reports a short blob and a missing one", "[client]") {
  Harness h([](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.ends_with(oci::sha256_of("missing").to_string())) {
      return make_response(404, R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]})");
    }
    return make_response(200, "0123");
  });
  layer::StringSink sink;
  auto short_blob = h.client.fetch_blob("library/alpine", blob_of("0123456789"), sink);
  REQUIRE(!short_blob);
  CHECK(short_blob.error().code() == Code::corrupt);
  CHECK_THAT(short_blob.error().what(), Catch::Contains("4 of the 10 bytes"));

  layer::StringSink other;
  auto missing = h.client.fetch_blob("library/alpine", blob_of("missing"), other);
  REQUIRE(!missing);
  CHECK(missing.error().code() == Code::not_found);
  CHECK_THAT(missing.error().what(), Catch::Contains("BLOB_UNKNOWN"));
}

TEST_CASE("head_manifest and blob_size", "[client]") {
  const std::string digest = oci::sha256_of(k_manifest).to_string();
  Harness h([&](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.ends_with("/missing") ||
        request.url.ends_with(oci::sha256_of("no").to_string())) {
      return make_response(404);
    }
    if (request.url.ends_with("/manifests/plain")) {
      if (request.method == "HEAD") {
        return make_response(200, {}, {{"Content-Type", std::string(oci::k_oci_manifest)}});
      }
      return manifest_response();
    }
    if (request.url.ends_with("/manifests/latest")) {
      return make_response(200, {},
                           {{"Content-Type", std::string(oci::k_docker_manifest)},
                            {"Docker-Content-Digest", digest},
                            {"Content-Length", "1234"}});
    }
    return make_response(200, {}, {{"Content-Length", "42"}});
  });
  auto head = h.client.head_manifest("library/alpine", "latest");
  REQUIRE(head);
  REQUIRE(*head);
  CHECK((*head)->media_type == oci::k_docker_manifest);
  CHECK((*head)->digest.to_string() == digest);
  CHECK((*head)->size == 1234);
  CHECK(h.requests().back().method == "HEAD");
  CHECK(h.requests().back().headers.get("Accept"));

  auto missing = h.client.head_manifest("library/alpine", "missing");
  REQUIRE(missing);
  CHECK(!*missing);

  // No Docker-Content-Digest: the GET answers.
  auto plain = h.client.head_manifest("library/alpine", "plain");
  REQUIRE(plain);
  REQUIRE(*plain);
  CHECK((*plain)->digest.to_string() == digest);
  CHECK((*plain)->size == static_cast<std::int64_t>(k_manifest.size()));
  CHECK(h.requests().back().method == "GET");

  auto size = h.client.blob_size("library/alpine", oci::sha256_of("yes"));
  REQUIRE(size);
  CHECK(*size == std::optional<std::uint64_t>(42));
  CHECK(h.requests().back().method == "HEAD");
  CHECK(h.requests().back().url ==
        k_registry + "/v2/library/alpine/blobs/" + oci::sha256_of("yes").to_string());
  auto no_size = h.client.blob_size("library/alpine", oci::sha256_of("no"));
  REQUIRE(no_size);
  CHECK(!*no_size);
}

namespace {

// An upload registry: POST opens a session, PATCH appends, PUT ?digest= commits. Every
// Location is relative and carries a new _state, as distribution does.
struct UploadScript {
  std::string received;
  int sessions = 0;
  int step = 0;
  int patch_status = 202;
  int put_status = 201;

  std::string location() const {
    return "/v2/app/blobs/uploads/u" + std::to_string(sessions) + "?_state=s" +
           std::to_string(step);
  }

  HttpResponse answer(const HttpRequest& request) {
    if (request.method == "POST") {
      ++sessions;
      step = 0;
      received.clear();
      return make_response(202, {}, {{"Location", location()}});
    }
    if (request.method == "PATCH") {
      if (patch_status != 202) {
        return make_response(patch_status);
      }
      received += request.body;
      ++step;
      return make_response(202, {}, {{"Location", location()}});
    }
    if (put_status != 201) {
      return make_response(put_status);
    }
    received += request.body;
    return make_response(201, {},
                         {{"Docker-Content-Digest", oci::sha256_of(received).to_string()}});
  }
};

SourceOpener opener_of(const std::string& content, int& opens) {
  return [&content, &opens]() -> Result<std::unique_ptr<oci::ByteSource>> {
    ++opens;
    return std::make_unique<oci::StringSource>(content);
  };
}

} // namespace

TEST_CASE("upload_blob: monolithic POST then PUT ?digest=", "[client]") {
  const std::string content = "hello world";
  const oci::Descriptor blob = blob_of(content);
  UploadScript script;
  Harness h(
      [&](const HttpRequest& request) -> Result<HttpResponse> { return script.answer(request); });
  int opens = 0;
  std::vector<std::uint64_t> progress;
  REQUIRE(h.client.upload_blob("app", blob, opener_of(content, opens),
                               [&](std::uint64_t done) { progress.push_back(done); }));
  const auto requests = h.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].url == k_registry + "/v2/app/blobs/uploads/");
  CHECK(requests[1].method == "PUT");
  CHECK(requests[1].url ==
        k_registry + "/v2/app/blobs/uploads/u1?_state=s0&digest=sha256%3A" + blob.digest.hex());
  CHECK(requests[1].body == content);
  CHECK(requests[1].headers.get("Content-Type") == "application/octet-stream");
  CHECK(requests[1].headers.get("Content-Length") == "11");
  CHECK(opens == 1);
  REQUIRE(!progress.empty());
  CHECK(progress.back() == 11);
}

TEST_CASE("upload_blob: chunked PATCHes follow each Location", "[client]") {
  const std::string content = "0123456789";
  const oci::Descriptor blob = blob_of(content);
  UploadScript script;
  ClientOptions options;
  options.monolithic_limit = 4;
  options.chunk_size = 4;
  Harness h(
      [&](const HttpRequest& request) -> Result<HttpResponse> { return script.answer(request); },
      options);
  int opens = 0;
  REQUIRE(h.client.upload_blob("app", blob, opener_of(content, opens)));
  const auto requests = h.requests();
  REQUIRE(requests.size() == 5);
  CHECK(requests[0].method == "POST");
  const std::vector<std::string> ranges{"0-3", "4-7", "8-9"};
  const std::vector<std::string> bodies{"0123", "4567", "89"};
  for (std::size_t i = 0; i < 3; ++i) {
    const HttpRequest& patch = requests[i + 1];
    CHECK(patch.method == "PATCH");
    CHECK(patch.url == k_registry + "/v2/app/blobs/uploads/u1?_state=s" + std::to_string(i));
    CHECK(patch.headers.get("Content-Range") == ranges[i]);
    CHECK(patch.headers.get("Content-Type") == "application/octet-stream");
    CHECK(patch.body == bodies[i]);
  }
  CHECK(requests[4].method == "PUT");
  CHECK(requests[4].url ==
        k_registry + "/v2/app/blobs/uploads/u1?_state=s3&digest=sha256%3A" + blob.digest.hex());
  CHECK(requests[4].body.empty());
  CHECK(script.received == content);
  CHECK(opens == 1);
}

TEST_CASE("upload_blob falls back from chunked to monolithic", "[client]") {
  const std::string content = "0123456789";
  UploadScript script;
  script.patch_status = GENERATE(405, 416);
  ClientOptions options;
  options.monolithic_limit = 4;
  options.chunk_size = 4;
  Harness h(
      [&](const HttpRequest& request) -> Result<HttpResponse> { return script.answer(request); },
      options);
  int opens = 0;
  REQUIRE(h.client.upload_blob("app", blob_of(content), opener_of(content, opens)));
  const auto requests = h.requests();
  REQUIRE(requests.size() == 4);
  CHECK(requests[0].method == "POST");
  CHECK(requests[1].method == "PATCH");
  CHECK(requests[2].method == "POST"); // a fresh upload
  CHECK(requests[3].method == "PUT");
  CHECK(requests[3].body == content);
  CHECK(h.sleeps.empty()); // a style switch is not a retry
}

TEST_CASE("upload_blob falls back from monolithic to chunked on 413", "[client]") {
  const std::string content = "0123456789";
  UploadScript script;
  ClientOptions options;
  options.chunk_size = 6;
  int puts = 0;
  Harness h(
      [&](const HttpRequest& request) -> Result<HttpResponse> {
        if (request.method == "PUT" && ++puts == 1) {
          return make_response(413);
        }
        return script.answer(request);
      },
      options);
  int opens = 0;
  REQUIRE(h.client.upload_blob("app", blob_of(content), opener_of(content, opens)));
  std::vector<std::string> methods;
  for (const auto& request : h.requests()) {
    methods.push_back(request.method);
  }
  CHECK(methods == std::vector<std::string>{"POST", "PUT", "POST", "PATCH", "PATCH", "PUT"});
  CHECK(script.received == content);
}

TEST_CASE("upload_blob retries reopen the source and start a fresh upload", "[client]") {
  const std::string content = "0123456789";
  UploadScript script;
  int puts = 0;
  Harness h([&](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.method == "PUT" && ++puts == 1) {
      return make_response(500);
    }
    return script.answer(request);
  });
  int opens = 0;
  REQUIRE(h.client.upload_blob("app", blob_of(content), opener_of(content, opens)));
  CHECK(opens == 2);
  CHECK(script.sessions == 2);
  CHECK(h.requests().back().body == content);
  CHECK(h.sleeps.size() == 1);
}

TEST_CASE("upload_blob checks the registry's Docker-Content-Digest", "[client]") {
  Harness h([](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.method == "POST") {
      return make_response(202, {}, {{"Location", "/v2/app/blobs/uploads/x"}});
    }
    return make_response(201, {}, {{"Docker-Content-Digest", oci::sha256_of("no").to_string()}});
  });
  const std::string content = "abc";
  int opens = 0;
  auto uploaded = h.client.upload_blob("app", blob_of(content), opener_of(content, opens));
  REQUIRE(!uploaded);
  CHECK(uploaded.error().code() == Code::corrupt);
  CHECK_THAT(uploaded.error().what(), Catch::Contains("upload blob registry.example/app@"));
}

TEST_CASE("mount_blob: 201 mounts, 202 cancels the opened upload", "[client]") {
  const oci::Digest digest = oci::sha256_of("layer");
  int status = 201;
  Harness h([&](const HttpRequest& request) -> Result<HttpResponse> {
    if (request.url.starts_with("https://auth.example/token")) {
      return make_response(200, R"({"token":"t"})");
    }
    if (!request.headers.get("Authorization")) {
      return make_response(401, k_unauthorized_body,
                           {{"WWW-Authenticate", R"(Bearer realm="https://auth.example/token")"}});
    }
    if (request.method == "DELETE") {
      return make_response(204);
    }
    if (status == 201) {
      return make_response(201, {}, {{"Docker-Content-Digest", digest.to_string()}});
    }
    return make_response(202, {}, {{"Location", "/v2/app/blobs/uploads/u9"}});
  });
  auto mounted = h.client.mount_blob("app", digest, "library/base");
  REQUIRE(mounted);
  CHECK(*mounted);
  auto requests = h.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].url == k_registry + "/v2/app/blobs/uploads/?mount=sha256%3A" + digest.hex() +
                               "&from=library%2Fbase");
  CHECK_THAT(percent_decode(requests[1].url),
             Catch::Contains("scope=repository:app:pull,push") &&
                 Catch::Contains("scope=repository:library/base:pull"));

  status = 202;
  mounted = h.client.mount_blob("app", digest, "library/base");
  REQUIRE(mounted);
  CHECK(!*mounted);
  requests = h.requests();
  REQUIRE(requests.size() == 5);
  CHECK(requests[4].method == "DELETE");
  CHECK(requests[4].url == k_registry + "/v2/app/blobs/uploads/u9");
  CHECK(requests[4].headers.get("Authorization") == "Bearer t");
}

TEST_CASE("put_manifest sends the bytes and checks Docker-Content-Digest", "[client]") {
  std::string answered = oci::sha256_of(k_manifest).to_string();
  Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(201, {}, {{"Docker-Content-Digest", answered}});
  });
  auto digest = h.client.put_manifest("app", "v1", k_manifest, oci::k_oci_manifest);
  REQUIRE(digest);
  CHECK(*digest == oci::sha256_of(k_manifest));
  const auto requests = h.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "PUT");
  CHECK(requests[0].url == k_registry + "/v2/app/manifests/v1");
  CHECK(requests[0].headers.get("Content-Type") == std::string(oci::k_oci_manifest));
  CHECK(requests[0].body == k_manifest);

  answered = oci::sha256_of("other").to_string();
  auto bad = h.client.put_manifest("app", "v1", k_manifest, oci::k_oci_manifest);
  REQUIRE(!bad);
  CHECK(bad.error().code() == Code::corrupt);
  CHECK_THAT(bad.error().what(), Catch::Contains("PUT manifest registry.example/app:v1"));
}

TEST_CASE("describe_error_response", "[client]") {
  CHECK(
      describe_error_response(make_response(
          404, R"({"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]})")) ==
      "404 NAME_UNKNOWN: repository name not known");
  CHECK(describe_error_response(make_response(
            400, R"({"errors":[{"code":"A","message":"x","detail":"why"},{"code":"B"}]})")) ==
        "400 A: x (why); B");
  CHECK(describe_error_response(make_response(502, "<html>bad gateway\nmore")) ==
        "502 Bad Gateway: <html>bad gateway");
  CHECK(describe_error_response(make_response(418)) == "418");
  CHECK(describe_error_response(make_response(500, std::string(500, 'x'))).size() < 240);
}
