#include "support/temp_dir.hpp"

#include <minibuild/base/file.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/registry/credentials.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

using namespace minibuild;
using namespace minibuild::registry;
using minibuild::test::TempDir;

namespace {

const std::string k_secret = "pa:ss:w0rd-SECRET";

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

std::string auth_field(const std::string& user, const std::string& password) {
  return oci::base64_encode(user + ":" + password);
}

std::string auths_file(const std::string& key, const std::string& user,
                       const std::string& password) {
  return R"({"auths":{")" + key + R"(":{"auth":")" + auth_field(user, password) + R"("}}})";
}

// An environment that sees only files below `dir`, and helpers in `dir`/bin.
CredentialEnvironment environment_in(const TempDir& dir) {
  CredentialEnvironment environment;
  environment.home = dir / "home";
  environment.helper_path = dir / "bin";
  return environment;
}

// Writes an executable docker-credential-NAME into `dir`/bin running `body` (sh). The helper
// saves its stdin next to itself as `.ACTION.stdin`.
void write_helper(const TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir / ("bin/docker-credential-" + name);
  write_text(path, "#!/bin/sh\ncat > \"$0.$1.stdin\"\n" + body + "\n");
  REQUIRE(::chmod(path.c_str(), 0755) == 0);
}

std::string helper_stdin(const TempDir& dir, const std::string& name, const std::string& action) {
  auto text = read_file(dir / ("bin/docker-credential-" + name + "." + action + ".stdin"));
  REQUIRE(text);
  return *text;
}

Credentials found(const CredentialEnvironment& environment, std::string_view host) {
  auto result = find_credentials(environment, host);
  INFO((result ? std::string() : result.error().what()));
  REQUIRE(result);
  REQUIRE(result->has_value());
  return **result;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

} // namespace

TEST_CASE("credential_key stores Docker Hub under its v1 URL", "[credentials]") {
  CHECK(credential_key("docker.io") == "https://index.docker.io/v1/");
  CHECK(credential_key("index.docker.io") == "https://index.docker.io/v1/");
  CHECK(credential_key("registry-1.docker.io") == "https://index.docker.io/v1/");
  CHECK(credential_key("ghcr.io") == "ghcr.io");
  CHECK(credential_key("localhost:5000") == "localhost:5000");
}

TEST_CASE("find_credentials: nothing configured is anonymous access", "[credentials]") {
  TempDir dir("credentials");
  auto result = find_credentials(environment_in(dir), "ghcr.io");
  REQUIRE(result);
  CHECK_FALSE(result->has_value());
}

TEST_CASE("find_credentials reads auths entries", "[credentials]") {
  TempDir dir("credentials");
  CredentialEnvironment environment = environment_in(dir);
  write_text(dir / "home/.docker/config.json",
             R"({"auths":{
                 "https://index.docker.io/v1/":{"auth":")" +
                 auth_field("hubuser", k_secret) + R"("},
                 "https://ghcr.io":{"auth":")" +
                 auth_field("gh", "x") + R"("},
                 "quay.io/v2/":{"auth":")" +
                 auth_field("q", "y") + R"("},
                 "localhost:5000":{"identitytoken":"refresh-abc"},
                 "old.example":{"username":"u","password":"p"},
                 "empty.example":{}
               },"other":{"kept":true}})");

  // The password may contain ':'; the user name ends at the first one.
  CHECK(found(environment, "docker.io") == Credentials{"hubuser", k_secret, ""});
  CHECK(found(environment, "registry-1.docker.io") == Credentials{"hubuser", k_secret, ""});
  // Keys with a scheme or a path match their host.
  CHECK(found(environment, "ghcr.io") == Credentials{"gh", "x", ""});
  CHECK(found(environment, "quay.io") == Credentials{"q", "y", ""});
  CHECK(found(environment, "localhost:5000") == Credentials{"", "", "refresh-abc"});
  CHECK(found(environment, "old.example") == Credentials{"u", "p", ""});
  for (std::string host : {"empty.example", "localhost:5001", "ghcr.io.evil"}) {
    INFO(host);
    auto none = find_credentials(environment, host);
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
  }
}

TEST_CASE("find_credentials follows the documented file order", "[credentials]") {
  TempDir dir("credentials");
  CredentialEnvironment environment = environment_in(dir);
  environment.registry_auth_file = dir / "auth-file.json";
  environment.xdg_runtime_dir = dir / "run";
  write_text(dir / "home/.docker/config.json",
             R"({"auths":{"a.example":{"auth":")" + auth_field("home", "1") + R"("},)" +
                 R"("b.example":{"auth":")" + auth_field("home", "2") + R"("},)" +
                 R"("c.example":{"auth":")" + auth_field("home", "3") + R"("}}})");
  write_text(dir / "run/containers/auth.json",
             R"({"auths":{"a.example":{"auth":")" + auth_field("xdg", "1") + R"("},)" +
                 R"("b.example":{"auth":")" + auth_field("xdg", "2") + R"("}}})");
  write_text(dir / "auth-file.json", auths_file("a.example", "env", "1"));

  CHECK(found(environment, "a.example").username == "env");
  CHECK(found(environment, "b.example").username == "xdg");
  CHECK(found(environment, "c.example").username == "home");

  // $DOCKER_CONFIG replaces ~/.docker.
  environment.docker_config = dir / "docker-config";
  write_text(dir / "docker-config/config.json", auths_file("c.example", "dockerconfig", "3"));
  CHECK(found(environment, "c.example").username == "dockerconfig");
  environment.registry_auth_file.clear();
  environment.xdg_runtime_dir.clear();
  CHECK(found(environment, "c.example").username == "dockerconfig");
  auto home_only = find_credentials(environment, "b.example");
  REQUIRE(home_only);
  CHECK_FALSE(home_only->has_value());
}

TEST_CASE("find_credentials: broken files are errors naming the file, not the secret",
          "[credentials]") {
  TempDir dir("credentials");
  CredentialEnvironment environment = environment_in(dir);
  const std::string path = dir / "home/.docker/config.json";
  SECTION("not JSON") {
    write_text(path, "{\"auths\": ");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::corrupt);
    CHECK(result.error().what().find(path) != std::string::npos);
  }
  SECTION("auth not base64") {
    write_text(path, R"({"auths":{"ghcr.io":{"auth":"SECRET!!"}}})");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::corrupt);
    CHECK(result.error().what().find(path) != std::string::npos);
    CHECK(result.error().what().find("SECRET") == std::string::npos);
  }
  SECTION("auth without a colon") {
    write_text(path, R"({"auths":{"ghcr.io":{"auth":")" + oci::base64_encode("SECRET") + R"("}}})");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE_FALSE(result);
    CHECK(result.error().what().find("SECRET") == std::string::npos);
    CHECK(result.error().what().find(oci::base64_encode("SECRET")) == std::string::npos);
  }
  SECTION("an empty file is an empty configuration") {
    write_text(path, "\n");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE(result);
    CHECK_FALSE(result->has_value());
  }
}

TEST_CASE("find_credentials asks credential helpers", "[credentials]") {
  TempDir dir("credentials");
  CredentialEnvironment environment = environment_in(dir);
  write_helper(
      dir, "fake",
      R"(printf '{"ServerURL":"x","Username":"helper-user","Secret":"%s"}' 'helper-secret')");
  write_helper(dir, "tokens",
               R"(printf '{"ServerURL":"x","Username":"<token>","Secret":"id-token"}')");
  write_helper(dir, "empty", "echo 'credentials not found in native keychain'\nexit 1");
  write_helper(dir, "broken", "echo 'cannot reach the keyring daemon' >&2\nexit 3");
  write_helper(dir, "leaky", R"(printf '{"Secret":"leaked-secret"}'; exit 2)");
  const std::string config = dir / "home/.docker/config.json";

  SECTION("credHelpers beats auths, credsStore covers the rest") {
    write_text(config, R"({"credHelpers":{"gcr.io":"fake","https://index.docker.io/v1/":"tokens"},
                          "auths":{"gcr.io":{"auth":")" +
                           auth_field("file", "f") + R"("},"quay.io":{"auth":")" +
                           auth_field("file", "q") + R"("}},
                          "credsStore":"fake"})");
    CHECK(found(environment, "gcr.io") == Credentials{"helper-user", "helper-secret", ""});
    CHECK(helper_stdin(dir, "fake", "get") == "gcr.io");
    // "<token>" marks an identity token.
    CHECK(found(environment, "docker.io") == Credentials{"", "", "id-token"});
    CHECK(helper_stdin(dir, "tokens", "get") == "https://index.docker.io/v1/");
    CHECK(found(environment, "quay.io") == Credentials{"file", "q", ""});
    CHECK(found(environment, "ghcr.io") == Credentials{"helper-user", "helper-secret", ""});
    CHECK(helper_stdin(dir, "fake", "get") == "ghcr.io");
  }
  SECTION("credentials not found is no credentials, and the next file is asked") {
    environment.registry_auth_file = dir / "auth.json";
    write_text(dir / "auth.json", R"({"credsStore":"empty"})");
    write_text(config, auths_file("ghcr.io", "fallback", "x"));
    CHECK(found(environment, "ghcr.io").username == "fallback");
    auto none = find_credentials(environment, "quay.io");
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
  }
  SECTION("a failing helper is an error naming it and the file") {
    write_text(config, R"({"credsStore":"broken"})");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
    CHECK(result.error().what() == "credential helper configured in \"" + config +
                                       "\": docker-credential-broken get for ghcr.io: exit "
                                       "status 3: cannot reach the keyring daemon");
  }
  SECTION("a failing helper's JSON output is not quoted") {
    write_text(config, R"({"credsStore":"leaky"})");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE_FALSE(result);
    CHECK(result.error().what().find("docker-credential-leaky") != std::string::npos);
    CHECK(result.error().what().find("leaked-secret") == std::string::npos);
  }
  SECTION("a missing helper is an error naming it") {
    write_text(config, R"({"credHelpers":{"ghcr.io":"absent"}})");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
    CHECK(result.error().what().find("docker-credential-absent not found") != std::string::npos);
    CHECK(result.error().what().find(config) != std::string::npos);
  }
  SECTION("a helper name cannot be a path") {
    write_text(config, R"({"credsStore":"../bin/docker-credential-fake"})");
    auto result = find_credentials(environment, "ghcr.io");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
  }
}

TEST_CASE("login_file prefers REGISTRY_AUTH_FILE, then DOCKER_CONFIG, then HOME", "[credentials]") {
  CredentialEnvironment environment;
  environment.home = "/home/u";
  CHECK(login_file(environment) == "/home/u/.docker/config.json");
  environment.docker_config = "/cfg";
  CHECK(login_file(environment) == "/cfg/config.json");
  environment.xdg_runtime_dir = "/run/user/1000";
  environment.registry_auth_file = "/x/auth.json";
  CHECK(login_file(environment) == "/x/auth.json");
}

TEST_CASE("store_credentials writes an auths entry atomically, 0600, keeping the rest",
          "[credentials]") {
  TempDir dir("credentials");
  CredentialEnvironment environment = environment_in(dir);
  const std::string config = dir / "home/.docker/config.json";

  SECTION("a new file in a new directory") {
    REQUIRE(store_credentials(environment, "docker.io", {"me", k_secret, ""}));
    CHECK(mode_of(config) == 0600);
    CHECK(mode_of(dir / "home/.docker") == 0700);
    CHECK(mode_of(dir / "home") == 0700);
    auto json = nlohmann::json::parse(*read_file(config));
    CHECK(json["auths"]["https://index.docker.io/v1/"]["auth"] == auth_field("me", k_secret));
    CHECK(found(environment, "registry-1.docker.io") == Credentials{"me", k_secret, ""});
  }
  SECTION("an existing file keeps its other content and loses stale spellings") {
    write_text(config, R"({"auths":{"https://ghcr.io":{"auth":")" + auth_field("old", "o") +
                           R"("},"quay.io":{"auth":")" + auth_field("q", "q") +
                           R"("}},"psFormat":"table {{.ID}}","proxies":{"default":{}}})");
    REQUIRE(::chmod(config.c_str(), 0644) == 0);
    REQUIRE(store_credentials(environment, "ghcr.io", {"new", "n", ""}));
    CHECK(mode_of(config) == 0600);
    auto json = nlohmann::json::parse(*read_file(config));
    CHECK(json["psFormat"] == "table {{.ID}}");
    CHECK(json["proxies"] == nlohmann::json{{"default", nlohmann::json::object()}});
    CHECK(json["auths"]["quay.io"]["auth"] == auth_field("q", "q"));
    CHECK(json["auths"]["https://ghcr.io"] == nlohmann::json::object());
    CHECK(found(environment, "ghcr.io") == Credentials{"new", "n", ""});
    // No temporary file is left behind.
    int entries = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator(dir / "home/.docker")) {
      ++entries;
    }
    CHECK(entries == 1);
  }
  SECTION("an identity token") {
    REQUIRE(store_credentials(environment, "localhost:5000", {"", "", "refresh-1"}));
    auto json = nlohmann::json::parse(*read_file(config));
    CHECK(json["auths"]["localhost:5000"] == nlohmann::json{{"identitytoken", "refresh-1"}});
    CHECK(found(environment, "localhost:5000") == Credentials{"", "", "refresh-1"});
  }
  SECTION("REGISTRY_AUTH_FILE is the target when set") {
    environment.registry_auth_file = dir / "containers/auth.json";
    REQUIRE(store_credentials(environment, "ghcr.io", {"u", "p", ""}));
    CHECK(std::filesystem::exists(dir / "containers/auth.json"));
    CHECK_FALSE(std::filesystem::exists(config));
  }
  SECTION("a file that is not JSON is not overwritten") {
    write_text(config, "not json");
    auto result = store_credentials(environment, "ghcr.io", {"u", k_secret, ""});
    REQUIRE_FALSE(result);
    CHECK(result.error().what().find(config) != std::string::npos);
    CHECK(*read_file(config) == "not json");
  }
}

TEST_CASE("store_credentials and erase_credentials go through a configured helper",
          "[credentials]") {
  TempDir dir("credentials");
  CredentialEnvironment environment = environment_in(dir);
  const std::string config = dir / "home/.docker/config.json";
  write_helper(dir, "keys", "exit 0");
  write_text(config, R"({"credsStore":"keys","auths":{"ghcr.io":{"auth":")" +
                         auth_field("stale", "s") + R"(","email":"a@b.c"}}})");

  REQUIRE(store_credentials(environment, "ghcr.io", {"u", k_secret, ""}));
  auto sent = nlohmann::json::parse(helper_stdin(dir, "keys", "store"));
  CHECK(sent == nlohmann::json{{"ServerURL", "ghcr.io"}, {"Username", "u"}, {"Secret", k_secret}});
  // The file keeps the entry (without the stale secret) and never gets the new one.
  auto json = nlohmann::json::parse(*read_file(config));
  CHECK(json["auths"]["ghcr.io"] == nlohmann::json{{"email", "a@b.c"}});
  CHECK(read_file(config)->find(auth_field("u", k_secret)) == std::string::npos);

  REQUIRE(store_credentials(environment, "docker.io", {"", "", "tok"}));
  sent = nlohmann::json::parse(helper_stdin(dir, "keys", "store"));
  CHECK(sent == nlohmann::json{{"ServerURL", "https://index.docker.io/v1/"},
                               {"Username", "<token>"},
                               {"Secret", "tok"}});
  json = nlohmann::json::parse(*read_file(config));
  CHECK(json["auths"]["https://index.docker.io/v1/"] == nlohmann::json::object());

  auto erased = erase_credentials(environment, "ghcr.io");
  REQUIRE(erased);
  CHECK(*erased);
  CHECK(helper_stdin(dir, "keys", "erase") == "ghcr.io");
  json = nlohmann::json::parse(*read_file(config));
  CHECK_FALSE(json["auths"].contains("ghcr.io"));
  CHECK(json["credsStore"] == "keys");

  SECTION("a failing helper store is an error naming the helper") {
    write_helper(dir, "keys", "echo 'keyring locked' >&2\nexit 1");
    auto result = store_credentials(environment, "ghcr.io", {"u", k_secret, ""});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::auth);
    CHECK(result.error().what().find("docker-credential-keys store for ghcr.io") !=
          std::string::npos);
    CHECK(result.error().what().find(k_secret) == std::string::npos);
  }
  SECTION("erase when the helper has nothing") {
    write_helper(dir, "keys", "echo 'credentials not found in native keychain'\nexit 1");
    auto again = erase_credentials(environment, "ghcr.io");
    REQUIRE(again);
    CHECK_FALSE(*again);
  }
}

TEST_CASE("erase_credentials removes every spelling of the registry", "[credentials]") {
  TempDir dir("credentials");
  CredentialEnvironment environment = environment_in(dir);
  const std::string config = dir / "home/.docker/config.json";

  auto nothing = erase_credentials(environment, "ghcr.io");
  REQUIRE(nothing);
  CHECK_FALSE(*nothing);

  write_text(config, R"({"auths":{"ghcr.io":{"auth":")" + auth_field("a", "b") +
                         R"("},"https://ghcr.io/v2/":{"auth":")" + auth_field("c", "d") +
                         R"("},"quay.io":{"auth":")" + auth_field("e", "f") +
                         R"("}},"detachKeys":"ctrl-e"})");
  auto erased = erase_credentials(environment, "ghcr.io");
  REQUIRE(erased);
  CHECK(*erased);
  auto none = find_credentials(environment, "ghcr.io");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  CHECK(found(environment, "quay.io") == Credentials{"e", "f", ""});
  auto json = nlohmann::json::parse(*read_file(config));
  CHECK(json["detachKeys"] == "ctrl-e");
  CHECK(mode_of(config) == 0600);

  auto again = erase_credentials(environment, "ghcr.io");
  REQUIRE(again);
  CHECK_FALSE(*again);
}
