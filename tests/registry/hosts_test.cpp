#include "support/temp_dir.hpp"

#include <minibuild/registry/hosts.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace minibuild;
using namespace minibuild::registry;
using minibuild::test::TempDir;

namespace {

void write(const std::string& path, const std::string& text = "x\n") {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// A config that reads only the given certs dirs (never the machine's /etc).
HostsConfig config_with(std::vector<std::string> certs_dirs) {
  HostsConfig config;
  config.certs_dirs = std::move(certs_dirs);
  return config;
}

} // namespace

TEST_CASE("loopback hosts are recognised as Reference does", "[hosts]") {
  for (const char* host :
       {"localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.1.2.3:80",
        "127.255.255.255", "[::1]", "[::1]:5000", "[0:0:0:0:0:0:0:1]:443"}) {
    CAPTURE(host);
    CHECK(is_loopback_host(host));
  }
  for (const char* host : {"registry.example", "localhost.example:5000", "128.0.0.1", "127.0.0.256",
                           "127.0.0", "127.0.0.1.5", "127.0.0.1a", "1127.0.0.1", "[::2]:5000",
                           "[fe80::1]", "10.0.0.1:5000", ""}) {
    CAPTURE(host);
    CHECK_FALSE(is_loopback_host(host));
  }
}

TEST_CASE("plain HTTP: loopback hosts and insecure registries", "[hosts]") {
  HostsConfig config = config_with({});
  config.insecure_registries = {"registry.lan", "build.lan:5000", "[fd00::5]"};

  const auto allowed = [&](const char* host) {
    Result<HostSettings> settings = resolve_host(config, host);
    REQUIRE(settings);
    CHECK(settings->host == host);
    return settings->allow_plain_http;
  };
  CHECK(allowed("localhost:5000"));
  CHECK(allowed("127.0.0.1:41234"));
  CHECK(allowed("[::1]:5000"));
  // "HOST" matches every port; host names compare case-insensitively.
  CHECK(allowed("registry.lan"));
  CHECK(allowed("registry.lan:5000"));
  CHECK(allowed("Registry.LAN:443"));
  CHECK(allowed("[fd00::5]:5000"));
  // "HOST:PORT" matches that port only.
  CHECK(allowed("build.lan:5000"));
  CHECK_FALSE(allowed("build.lan"));
  CHECK_FALSE(allowed("build.lan:5001"));
  // Neither a suffix nor a prefix match.
  CHECK_FALSE(allowed("other.registry.lan"));
  CHECK_FALSE(allowed("registry.lan.example"));
  CHECK_FALSE(allowed("registry-1.docker.io"));
}

TEST_CASE("extra CA files come first and apply to every host", "[hosts]") {
  HostsConfig config = config_with({});
  config.extra_ca_files = {"/ca/one.pem", "/ca/two.pem"};
  Result<HostSettings> settings = resolve_host(config, "registry.example");
  REQUIRE(settings);
  CHECK(settings->tls.ca_files == std::vector<std::string>{"/ca/one.pem", "/ca/two.pem"});
  CHECK(settings->tls.client_cert_file.empty());
  CHECK(settings->tls.client_key_file.empty());
  CHECK_FALSE(settings->allow_plain_http);
}

TEST_CASE("certs.d: containers layout and Docker layout", "[hosts]") {
  TempDir dir("hosts");
  const std::string containers = dir / "containers";
  const std::string docker = dir / "docker";
  write(containers + "/registry.example:5000/z-site.crt");
  write(containers + "/registry.example:5000/a-corp.crt");
  write(containers + "/registry.example:5000/me.cert");
  write(containers + "/registry.example:5000/me.key");
  write(containers + "/registry.example:5000/README"); // neither a CA nor a client pair
  write(docker + "/registry.example:5000/ca.crt");
  write(docker + "/registry.example:5000/client.cert");
  write(docker + "/registry.example:5000/client.key");
  write(docker + "/registry.example/other.crt"); // another host: port is part of the name

  HostsConfig config = config_with({containers, docker});
  config.extra_ca_files = {"/cli/ca.pem"};
  Result<HostSettings> settings = resolve_host(config, "registry.example:5000");
  REQUIRE(settings);
  // Extra CAs, then each directory in order, each sorted by name.
  CHECK(settings->tls.ca_files == std::vector<std::string>{
                                      "/cli/ca.pem",
                                      containers + "/registry.example:5000/a-corp.crt",
                                      containers + "/registry.example:5000/z-site.crt",
                                      docker + "/registry.example:5000/ca.crt",
                                  });
  // The first client pair found is used.
  CHECK(settings->tls.client_cert_file == containers + "/registry.example:5000/me.cert");
  CHECK(settings->tls.client_key_file == containers + "/registry.example:5000/me.key");

  // Docker's layout alone.
  Result<HostSettings> docker_only = resolve_host(config_with({docker}), "registry.example:5000");
  REQUIRE(docker_only);
  CHECK(docker_only->tls.ca_files ==
        std::vector<std::string>{docker + "/registry.example:5000/ca.crt"});
  CHECK(docker_only->tls.client_cert_file == docker + "/registry.example:5000/client.cert");
  CHECK(docker_only->tls.client_key_file == docker + "/registry.example:5000/client.key");

  // Without the port, another directory.
  Result<HostSettings> portless =
      resolve_host(config_with({containers, docker}), "registry.example");
  REQUIRE(portless);
  CHECK(portless->tls.ca_files == std::vector<std::string>{docker + "/registry.example/other.crt"});
  CHECK(portless->tls.client_cert_file.empty());
}

TEST_CASE("certs.d: missing directories are fine", "[hosts]") {
  TempDir dir("hosts");
  write(dir / "certs.d/some.other.host/ca.crt");
  Result<HostSettings> settings =
      resolve_host(config_with({dir / "does-not-exist", dir / "certs.d",
                                dir / "certs.d/some.other.host/ca.crt"}),
                   "registry.example");
  REQUIRE(settings);
  CHECK(settings->tls.ca_files.empty());
  CHECK(settings->tls.client_cert_file.empty());
}

TEST_CASE("certs.d: a certificate without its key, or a key without its certificate", "[hosts]") {
  TempDir dir("hosts");
  write(dir / "a/registry.example/client.cert");
  write(dir / "b/registry.example/client.key");

  Result<HostSettings> no_key = resolve_host(config_with({dir / "a"}), "registry.example");
  REQUIRE_FALSE(no_key);
  CHECK(no_key.error().what().find(dir / "a/registry.example/client.cert") != std::string::npos);
  CHECK(no_key.error().what().find(dir / "a/registry.example/client.key") != std::string::npos);

  Result<HostSettings> no_cert = resolve_host(config_with({dir / "b"}), "registry.example");
  REQUIRE_FALSE(no_cert);
  CHECK(no_cert.error().what().find(dir / "b/registry.example/client.key") != std::string::npos);
  CHECK(no_cert.error().what().find(dir / "b/registry.example/client.cert") != std::string::npos);
}

TEST_CASE("certs.d: an unreadable host directory is an I/O error", "[hosts]") {
  TempDir dir("hosts");
  // A symlink loop cannot be opened, even by root.
  std::filesystem::create_directories(dir / "loop");
  REQUIRE(::symlink("registry.example", (dir / "loop/registry.example").c_str()) == 0);
  Result<HostSettings> looped = resolve_host(config_with({dir / "loop"}), "registry.example");
  REQUIRE_FALSE(looped);
  CHECK(looped.error().code() == Code::io);
  CHECK(looped.error().sys_errno() == ELOOP);
  CHECK(looped.error().what().find(dir / "loop/registry.example") != std::string::npos);

  if (::geteuid() != 0) { // root reads every directory whatever its mode
    write(dir / "certs.d/registry.example/ca.crt");
    REQUIRE(::chmod((dir / "certs.d/registry.example").c_str(), 0) == 0);
    Result<HostSettings> denied = resolve_host(config_with({dir / "certs.d"}), "registry.example");
    REQUIRE_FALSE(denied);
    CHECK(denied.error().code() == Code::io);
    CHECK(denied.error().sys_errno() == EACCES);
  }
}

TEST_CASE("a host that could leave the certs directory is refused", "[hosts]") {
  TempDir dir("hosts");
  for (const char* host : {"", ".", "..", "../etc", "a/b"}) {
    CAPTURE(host);
    Result<HostSettings> settings = resolve_host(config_with({dir.path()}), host);
    REQUIRE_FALSE(settings);
    CHECK(settings.error().code() == Code::usage);
  }
}
