#include "support/scripted_transport.hpp"

#include <minibuild/oci/descriptor.hpp>
#include <minibuild/registry/auth.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace minibuild;
using namespace minibuild::registry;
using minibuild::test::make_response;
using minibuild::test::ScriptedTransport;

namespace {

const std::string k_password = "s3cr3t:pa55/word";
const std::string k_refresh = "refresh-TOKEN-xyz";
const std::string k_scope = "repository:library/alpine:pull";

CredentialLookup no_credentials() {
  return [](std::string_view) -> Result<std::optional<Credentials>> { return std::nullopt; };
}

CredentialLookup user_credentials(std::vector<std::string>* asked = nullptr) {
  return [asked](std::string_view domain) -> Result<std::optional<Credentials>> {
    if (asked != nullptr) {
      asked->emplace_back(domain);
    }
    return Credentials{"alice", k_password, ""};
  };
}

CredentialLookup token_credentials() {
  return [](std::string_view) -> Result<std::optional<Credentials>> {
    return Credentials{"", "", k_refresh};
  };
}

HttpResponse challenge(std::string value) {
  return make_response(401, "", {{"WWW-Authenticate", std::move(value)}});
}

const std::string k_hub_challenge = "Bearer realm=\"https://auth.docker.io/token\","
                                    "service=\"registry.docker.io\","
                                    "scope=\"repository:library/alpine:pull\"";

// A token server answering every request with `body`.
ScriptedTransport token_server(std::string body, int status = 200) {
  return ScriptedTransport([body, status](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(status, body);
  });
}

// A clock the test moves by hand.
struct ManualClock {
  Authenticator::Clock::time_point now = Authenticator::Clock::time_point{} + std::chrono::hours(1);
  std::function<Authenticator::Clock::time_point()> function() {
    return [this] { return now; };
  }
};

std::string basic_of(const std::string& user, const std::string& password) {
  return "Basic " + oci::base64_encode(user + ":" + password);
}

} // namespace

TEST_CASE("parse_www_authenticate reads the challenges registries send", "[auth]") {
  struct Case {
    std::string header;
    std::vector<Challenge> expected;
  };
  const std::vector<Case> cases = {
      // Docker Hub
      {k_hub_challenge,
       {{"Bearer",
         {{"realm", "https://auth.docker.io/token"},
          {"service", "registry.docker.io"},
          {"scope", "repository:library/alpine:pull"}}}}},
      // GHCR, with an error parameter after a refused token
      {"Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\",scope=\"repository:o/r:pull\","
       "error=\"insufficient_scope\"",
       {{"Bearer",
         {{"realm", "https://ghcr.io/token"},
          {"service", "ghcr.io"},
          {"scope", "repository:o/r:pull"},
          {"error", "insufficient_scope"}}}}},
      // distribution with htpasswd
      {"Basic realm=\"Registry Realm\"", {{"Basic", {{"realm", "Registry Realm"}}}}},
      // commas inside quotes, spaces around '=', upper-case names, a token value
      {"bearer Realm = \"https://a.example/t?x=1,2\" , scope=\"repository:a/b:pull,push\", "
       "service=plain",
       {{"bearer",
         {{"realm", "https://a.example/t?x=1,2"},
          {"scope", "repository:a/b:pull,push"},
          {"service", "plain"}}}}},
      // escapes in a quoted string
      {R"(Basic realm="say \"hi\" \\ there")", {{"Basic", {{"realm", R"(say "hi" \ there)"}}}}},
      // several challenges in one header, empty list elements
      {"Basic realm=\"x\", , Bearer realm=\"https://t.example/token\",service=\"s\", Negotiate",
       {{"Basic", {{"realm", "x"}}},
        {"Bearer", {{"realm", "https://t.example/token"}, {"service", "s"}}},
        {"Negotiate", {}}}},
      // token68 tolerated (and dropped), then another challenge
      {"Basic dXNlcjpwYXNz==, Bearer realm=\"r\"", {{"Basic", {}}, {"Bearer", {{"realm", "r"}}}}},
      {"Basic", {{"Basic", {}}}},
  };
  for (const Case& c : cases) {
    INFO(c.header);
    auto parsed = parse_www_authenticate(c.header);
    REQUIRE(parsed);
    CHECK(*parsed == c.expected);
  }
}

TEST_CASE("parse_www_authenticate rejects malformed headers", "[auth]") {
  for (std::string header :
       {"", "  ,  ", "Bearer realm=\"unterminated",
        "Bearer realm=\"a\",service=", "Bearer realm=\"a\" service=\"b\"", "Bearer =x",
        "Bearer realm=\"a\\", "Bearer realm=\"a\x01\"", "Basic abc=def ghi", "\"Bearer\""}) {
    INFO(header);
    auto parsed = parse_www_authenticate(header);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::network);
    CHECK(parsed.error().what().find("WWW-Authenticate") != std::string::npos);
  }
}

TEST_CASE("repository_scope names pull or pull,push", "[auth]") {
  CHECK(repository_scope("library/alpine", false) == "repository:library/alpine:pull");
  CHECK(repository_scope("me/app", true) == "repository:me/app:pull,push");
}

TEST_CASE("Basic: anonymous first, then the configured user on every request", "[auth]") {
  ScriptedTransport transport([](const HttpRequest&) -> Result<HttpResponse> {
    return fail(Code::internal, "Basic must not contact anything");
  });
  std::vector<std::string> asked;
  Authenticator auth(transport, user_credentials(&asked));

  auto first = auth.authorization("registry.example", "registry.example", {k_scope});
  REQUIRE(first);
  CHECK_FALSE(first->has_value());

  REQUIRE(auth.handle_unauthorized("registry.example", "registry.example", {k_scope},
                                   challenge("Basic realm=\"Registry Realm\""), {}));
  CHECK(asked == std::vector<std::string>{"registry.example"});
  for (const auto& scopes : {std::vector<std::string>{k_scope}, std::vector<std::string>{}}) {
    auto header = auth.authorization("registry.example", "registry.example", scopes);
    REQUIRE(header);
    REQUIRE(header->has_value());
    // The password contains ':'; it goes after the first one.
    CHECK(**header == basic_of("alice", k_password));
  }
  CHECK(asked.size() == 1); // looked up once, not per request
  CHECK(transport.requests().empty());
  // Another host knows nothing yet.
  auto other = auth.authorization("other.example", "other.example", {k_scope});
  REQUIRE(other);
  CHECK_FALSE(other->has_value());
}

TEST_CASE("Basic: a 401 despite the credentials says they were refused", "[auth]") {
  ScriptedTransport transport(
      [](const HttpRequest&) -> Result<HttpResponse> { return make_response(500); });
  Authenticator auth(transport, user_credentials());
  const HttpResponse basic = challenge("Basic realm=\"r\"");
  REQUIRE(auth.handle_unauthorized("reg.example:5000", "reg.example:5000", {}, basic, {}));
  const auto header = auth.authorization("reg.example:5000", "reg.example:5000", {});
  REQUIRE(header);
  REQUIRE(*header);
  // A request that went out anonymous in parallel, before the first 401 was handled: not a
  // refusal, it just gets the credentials now (a parallel push failed on this once).
  REQUIRE(auth.handle_unauthorized("reg.example:5000", "reg.example:5000", {}, basic, {},
                                   ChallengeOrigin::https, std::nullopt));
  auto refused = auth.handle_unauthorized("reg.example:5000", "reg.example:5000", {}, basic, {},
                                          ChallengeOrigin::https, **header);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::auth);
  CHECK(refused.error().what() == "reg.example:5000 refused the credentials for alice");
  CHECK(refused.error().what().find("s3cr3t") == std::string::npos);
}

TEST_CASE("Basic without credentials says how to log in", "[auth]") {
  ScriptedTransport transport(
      [](const HttpRequest&) -> Result<HttpResponse> { return make_response(500); });
  Authenticator auth(transport, no_credentials());
  auto result = auth.handle_unauthorized("registry.example", "registry.example", {},
                                         challenge("Basic realm=\"r\""), {});
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::auth);
  CHECK(result.error().what() ==
        "registry.example requires authentication: no credentials configured "
        "(run `minibuild login registry.example`)");
  auto header = auth.authorization("registry.example", "registry.example", {});
  REQUIRE(header);
  CHECK_FALSE(header->has_value());
}

TEST_CASE("Bearer: a token from the realm with service, scopes and Basic credentials", "[auth]") {
  ScriptedTransport transport = token_server(R"({"token":"T1","expires_in":300})");
  Authenticator auth(transport, user_credentials());
  const std::vector<std::string> scopes = {k_scope, "repository:library/busybox:pull"};
  REQUIRE(auth.handle_unauthorized("registry-1.docker.io", "docker.io", scopes,
                                   challenge(k_hub_challenge), {}));

  auto requests = transport.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "GET");
  // Scopes sorted and deduplicated (the challenge's scope is one of ours), percent-encoded.
  CHECK(requests[0].url == "https://auth.docker.io/token?service=registry.docker.io"
                           "&scope=repository%3Alibrary%2Falpine%3Apull"
                           "&scope=repository%3Alibrary%2Fbusybox%3Apull&account=alice");
  CHECK(requests[0].headers.get("Authorization") == basic_of("alice", k_password));
  // The realm is another host: the registry's TLS settings are not used for it.
  CHECK(requests[0].tls == TlsSettings{});

  auto header = auth.authorization("registry-1.docker.io", "docker.io", scopes);
  REQUIRE(header);
  CHECK(*header == std::optional<std::string>("Bearer T1"));
  // The scope set, not the order, is the key.
  auto reordered = auth.authorization("registry-1.docker.io", "docker.io",
                                      {"repository:library/busybox:pull", k_scope, k_scope});
  REQUIRE(reordered);
  CHECK(*reordered == std::optional<std::string>("Bearer T1"));
  CHECK(transport.requests().size() == 1);
}

TEST_CASE("Bearer: anonymous token request, challenge scope added, access_token read", "[auth]") {
  ScriptedTransport transport = token_server(R"({"access_token":"A1"})");
  Authenticator auth(transport, no_credentials());
  TlsSettings tls;
  tls.ca_files = {"/etc/containers/certs.d/ghcr.io/ca.crt"};
  REQUIRE(auth.handle_unauthorized(
      "ghcr.io", "ghcr.io", {},
      challenge("Bearer realm=\"https://ghcr.io/token?client=x\",service=\"ghcr.io\","
                "scope=\"repository:o/r:pull repository:o/s:pull\""),
      tls));
  auto requests = transport.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].url == "https://ghcr.io/token?client=x&service=ghcr.io"
                           "&scope=repository%3Ao%2Fr%3Apull&scope=repository%3Ao%2Fs%3Apull");
  CHECK_FALSE(requests[0].headers.get("Authorization"));
  // Same host as the registry: its CA files apply.
  CHECK(requests[0].tls == tls);
  auto header = auth.authorization("ghcr.io", "ghcr.io", {});
  REQUIRE(header);
  CHECK(*header == std::optional<std::string>("Bearer A1"));
}

TEST_CASE("Bearer: tokens are cached per scope set", "[auth]") {
  int issued = 0;
  ScriptedTransport transport([&issued](const HttpRequest&) -> Result<HttpResponse> {
    return make_response(200, R"({"token":"T)" + std::to_string(++issued) + R"("})");
  });
  Authenticator auth(transport, no_credentials());
  const std::string push_scope = repository_scope("me/app", true);
  REQUIRE(auth.handle_unauthorized("reg.example", "reg.example", {k_scope},
                                   challenge("Bearer realm=\"https://reg.example/token\""), {}));
  auto pull = auth.authorization("reg.example", "reg.example", {k_scope});
  REQUIRE(pull);
  CHECK(*pull == std::optional<std::string>("Bearer T1"));

  // Another scope set has no token yet: the request goes out without one.
  auto push = auth.authorization("reg.example", "reg.example", {push_scope});
  REQUIRE(push);
  CHECK_FALSE(push->has_value());
  REQUIRE(auth.handle_unauthorized("reg.example", "reg.example", {push_scope},
                                   challenge("Bearer realm=\"https://reg.example/token\""), {}));
  push = auth.authorization("reg.example", "reg.example", {push_scope});
  REQUIRE(push);
  CHECK(*push == std::optional<std::string>("Bearer T2"));
  // The first token is still there and reused.
  pull = auth.authorization("reg.example", "reg.example", {k_scope});
  REQUIRE(pull);
  CHECK(*pull == std::optional<std::string>("Bearer T1"));
  CHECK(transport.requests().size() == 2);

  // A 401 for a token just fetched: every call fetches once more (the client stops retrying).
  REQUIRE(auth.handle_unauthorized("reg.example", "reg.example", {k_scope},
                                   challenge("Bearer realm=\"https://reg.example/token\""), {}));
  CHECK(transport.requests().size() == 3);
  pull = auth.authorization("reg.example", "reg.example", {k_scope});
  REQUIRE(pull);
  CHECK(*pull == std::optional<std::string>("Bearer T3"));
}

TEST_CASE("Bearer: a token expires after expires_in minus a margin", "[auth]") {
  ManualClock clock;
  SECTION("expires_in 300: kept for 270 s") {
    ScriptedTransport transport = token_server(R"({"token":"T","expires_in":300})");
    Authenticator auth(transport, no_credentials());
    auth.set_clock(clock.function());
    REQUIRE(auth.handle_unauthorized("r.example", "r.example", {k_scope},
                                     challenge("Bearer realm=\"https://r.example/t\""), {}));
    clock.now += std::chrono::seconds(269);
    CHECK(auth.authorization("r.example", "r.example", {k_scope})->has_value());
    clock.now += std::chrono::seconds(2);
    CHECK_FALSE(auth.authorization("r.example", "r.example", {k_scope})->has_value());
  }
  SECTION("no expires_in: 60 s, kept for 54 s") {
    ScriptedTransport transport =
        token_server(R"({"token":"T","issued_at":"2024-01-01T00:00:00Z"})");
    Authenticator auth(transport, no_credentials());
    auth.set_clock(clock.function());
    REQUIRE(auth.handle_unauthorized("r.example", "r.example", {k_scope},
                                     challenge("Bearer realm=\"https://r.example/t\""), {}));
    clock.now += std::chrono::seconds(53);
    CHECK(auth.authorization("r.example", "r.example", {k_scope})->has_value());
    clock.now += std::chrono::seconds(2);
    CHECK_FALSE(auth.authorization("r.example", "r.example", {k_scope})->has_value());
  }
  SECTION("a short lifetime still serves the immediate retry") {
    ScriptedTransport transport = token_server(R"({"token":"T","expires_in":4})");
    Authenticator auth(transport, no_credentials());
    auth.set_clock(clock.function());
    REQUIRE(auth.handle_unauthorized("r.example", "r.example", {k_scope},
                                     challenge("Bearer realm=\"https://r.example/t\""), {}));
    CHECK(auth.authorization("r.example", "r.example", {k_scope})->has_value());
    clock.now += std::chrono::seconds(2);
    CHECK_FALSE(auth.authorization("r.example", "r.example", {k_scope})->has_value());
  }
}

TEST_CASE("Bearer with an identity token: OAuth2 refresh-token POST", "[auth]") {
  ScriptedTransport transport = token_server(R"({"access_token":"O1","expires_in":120})");
  Authenticator auth(transport, token_credentials());
  REQUIRE(auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                   challenge(k_hub_challenge), {}));
  auto requests = transport.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].url == "https://auth.docker.io/token");
  CHECK(requests[0].headers.get("Content-Type") == "application/x-www-form-urlencoded");
  CHECK_FALSE(requests[0].headers.get("Authorization"));
  CHECK(requests[0].body == "grant_type=refresh_token&refresh_token=" + k_refresh +
                                "&service=registry.docker.io"
                                "&scope=repository%3Alibrary%2Falpine%3Apull&client_id=minibuild");
  auto header = auth.authorization("registry-1.docker.io", "docker.io", {k_scope});
  REQUIRE(header);
  CHECK(*header == std::optional<std::string>("Bearer O1"));
}

TEST_CASE("Bearer: refusals by the token server are auth errors without secrets", "[auth]") {
  SECTION("credentials refused") {
    ScriptedTransport transport =
        token_server(R"({"details":"incorrect username or password"})", 401);
    Authenticator auth(transport, user_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
    CHECK(result.error().what() ==
          "auth.docker.io refused the credentials for alice (token for registry-1.docker.io, "
          "401: incorrect username or password)");
  }
  SECTION("a server echoing the secret is not quoted") {
    ScriptedTransport transport =
        token_server(R"({"details":"bad password )" + k_password + R"("})", 403);
    Authenticator auth(transport, user_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
    CHECK(result.error().what().find("s3cr3t") == std::string::npos);
    CHECK(result.error().what().find("auth.docker.io") != std::string::npos);
    CHECK(result.error().what().find("registry-1.docker.io") != std::string::npos);
  }
  SECTION("identity token refused") {
    ScriptedTransport transport = token_server(R"({"error":"invalid_grant"})", 401);
    Authenticator auth(transport, token_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
    CHECK(result.error().what().find(k_refresh) == std::string::npos);
    CHECK(result.error().what().find("invalid_grant") != std::string::npos);
    CHECK(result.error().what().find("minibuild login docker.io") != std::string::npos);
  }
  SECTION("anonymous token refused") {
    ScriptedTransport transport = token_server("", 401);
    Authenticator auth(transport, no_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
    CHECK(result.error().what() == "auth.docker.io refused an anonymous token for "
                                   "registry-1.docker.io (401): no credentials configured "
                                   "(run `minibuild login docker.io`)");
  }
}

TEST_CASE("Bearer: other token server failures are network errors", "[auth]") {
  SECTION("500") {
    ScriptedTransport transport = token_server("oops", 500);
    Authenticator auth(transport, user_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::network);
    CHECK(result.error().what() ==
          "get a token from auth.docker.io for registry-1.docker.io: status 500");
  }
  SECTION("unreachable") {
    ScriptedTransport transport([](const HttpRequest&) -> Result<HttpResponse> {
      return fail(Code::network, "connect auth.docker.io: Connection refused");
    });
    Authenticator auth(transport, user_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::network);
    CHECK(result.error().what() == "get a token from auth.docker.io for registry-1.docker.io: "
                                   "connect auth.docker.io: Connection refused");
  }
  SECTION("no token in the answer") {
    ScriptedTransport transport = token_server(R"({"expires_in":60})");
    Authenticator auth(transport, user_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::network);
    CHECK(result.error().what().find("no token") != std::string::npos);
  }
  SECTION("not JSON") {
    ScriptedTransport transport = token_server("<html>");
    Authenticator auth(transport, user_credentials());
    auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                           challenge(k_hub_challenge), {});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::network);
  }
}

TEST_CASE("Bearer: the realm must be http(s), plain http only after a plain-http challenge",
          "[auth]") {
  ScriptedTransport transport = token_server(R"({"token":"T"})");
  Authenticator auth(transport, user_credentials());
  const HttpResponse http_realm = challenge("Bearer realm=\"http://127.0.0.1:5001/auth\"");
  auto refused = auth.handle_unauthorized("localhost:5000", "localhost:5000", {}, http_realm, {});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::network);
  CHECK(refused.error().what().find("plain http") != std::string::npos);
  CHECK(transport.requests().empty());

  REQUIRE(auth.handle_unauthorized("localhost:5000", "localhost:5000", {}, http_realm, {},
                                   ChallengeOrigin::plain_http));
  REQUIRE(transport.requests().size() == 1);
  CHECK(transport.requests()[0].url == "http://127.0.0.1:5001/auth?account=alice");

  for (std::string realm : {"ftp://x/token", "file:///etc/passwd", "/token", "https:///t"}) {
    INFO(realm);
    auto bad = auth.handle_unauthorized("localhost:5000", "localhost:5000", {},
                                        challenge("Bearer realm=\"" + realm + "\""), {});
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == Code::network);
  }
  auto no_realm = auth.handle_unauthorized("localhost:5000", "localhost:5000", {},
                                           challenge("Bearer service=\"x\""), {});
  REQUIRE_FALSE(no_realm);
  CHECK(no_realm.error().what().find("without a realm") != std::string::npos);
  CHECK(transport.requests().size() == 1);
}

TEST_CASE("handle_unauthorized picks Bearer among several challenges and headers", "[auth]") {
  ScriptedTransport transport = token_server(R"({"token":"T"})");
  Authenticator auth(transport, user_credentials());
  HttpResponse response =
      make_response(401, "",
                    {{"WWW-Authenticate", "Basic realm=\"x\""},
                     {"WWW-Authenticate", "Bearer realm=\"https://t.example/\""}});
  REQUIRE(auth.handle_unauthorized("r.example", "r.example", {}, response, {}));
  CHECK(transport.requests().size() == 1);
  CHECK(auth.authorization("r.example", "r.example", {}).value() ==
        std::optional<std::string>("Bearer T"));

  auto none = auth.handle_unauthorized("r.example", "r.example", {}, make_response(401), {});
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == Code::auth);
  auto unknown =
      auth.handle_unauthorized("r.example", "r.example", {}, challenge("Negotiate abc=="), {});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == Code::unsupported);
  auto malformed =
      auth.handle_unauthorized("r.example", "r.example", {}, challenge("Bearer realm=\"x"), {});
  REQUIRE_FALSE(malformed);
  CHECK(malformed.error().code() == Code::network);
}

TEST_CASE("Authenticator: credential lookup errors propagate with the domain", "[auth]") {
  ScriptedTransport transport = token_server(R"({"token":"T"})");
  Authenticator auth(transport, [](std::string_view) -> Result<std::optional<Credentials>> {
    return fail(Code::corrupt, "credentials file \"/x/config.json\" is not valid JSON");
  });
  auto result = auth.handle_unauthorized("registry-1.docker.io", "docker.io", {k_scope},
                                         challenge(k_hub_challenge), {});
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::corrupt);
  CHECK(result.error().what() ==
        "credentials for docker.io: credentials file \"/x/config.json\" is not valid JSON");
  CHECK(transport.requests().empty());
}

TEST_CASE("Authenticator: parallel downloads share it", "[auth]") {
  std::atomic<int> issued{0};
  ScriptedTransport transport([&issued](const HttpRequest& request) -> Result<HttpResponse> {
    ++issued;
    // The token names the scope it was asked for, so each thread can check it got its own.
    std::string scope = request.url.substr(request.url.find("scope=") + 6);
    return make_response(200, R"({"token":")" + scope + R"("})");
  });
  Authenticator auth(transport, no_credentials());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&auth, &good, i] {
      const std::string scope = "repository:r" + std::to_string(i) + ":pull";
      for (int round = 0; round < 20; ++round) {
        auto handled =
            auth.handle_unauthorized("r.example", "r.example", {scope},
                                     challenge("Bearer realm=\"https://r.example/token\""), {});
        auto header = auth.authorization("r.example", "r.example", {scope});
        if (handled && header && header->has_value() &&
            **header == "Bearer repository%3Ar" + std::to_string(i) + "%3Apull") {
          ++good;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(good == 160);
  CHECK(issued == 160);
}
