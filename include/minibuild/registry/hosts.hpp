// Per-registry connection settings: which scheme to use and which certificates to trust or
// present, from the command line and the certs.d directories Docker and podman read.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/registry/http.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace minibuild::registry {

/// What the user configured, for every registry of a command.
struct HostsConfig {
  /// --registry-ca FILE (repeatable): trusted for every registry.
  std::vector<std::string> extra_ca_files;
  /// --insecure-registry HOST[:PORT] (repeatable): plain HTTP allowed. A HOST without a port
  /// matches every port of that host.
  std::vector<std::string> insecure_registries;
  /// Where per-host certificates live, searched in order. Defaults: /etc/containers/certs.d
  /// (podman, skopeo: every `*.crt` is a CA, `*.cert` + `*.key` a client pair) and
  /// /etc/docker/certs.d (Docker: `ca.crt`, `client.cert`, `client.key`). Tests point these
  /// elsewhere.
  std::vector<std::string> certs_dirs = {"/etc/containers/certs.d", "/etc/docker/certs.d"};
};

/// The settings for one registry host.
struct HostSettings {
  std::string host; ///< "HOST[:PORT]" as contacted (api host)
  /// True when plain http:// may be used: the host is named in insecure_registries, or is a
  /// loopback host (localhost, 127.0.0.0/8, [::1]) as Docker allows. HTTPS is still tried
  /// first; http:// only when the peer does not speak TLS.
  bool allow_plain_http = false;
  TlsSettings tls;
};

/// Settings for `host` ("HOST[:PORT]"): CA files from `extra_ca_files` and from each certs
/// directory's `HOST[:PORT]/` subdirectory (files sorted by name), a client certificate pair
/// when one is there (a `.cert` without its `.key` is an error naming both files), and
/// allow_plain_http as above. Missing directories are fine; an unreadable one is Code::io.
Result<HostSettings> resolve_host(const HostsConfig& config, std::string_view host);

/// True when `host_and_port` ("HOST[:PORT]") names a loopback host: "localhost", a dotted quad
/// in 127.0.0.0/8, or "[::1]", with any port. The rule of Reference::is_insecure_by_default.
bool is_loopback_host(std::string_view host_and_port);

} // namespace minibuild::registry
