// Registry credentials: where Docker, podman and skopeo keep them, read and written the same
// way, so `docker login`, `podman login` and `minibuild login` share one set.
//
// Lookup order for reading (the first file that exists and has an entry for the registry wins):
//   1. $REGISTRY_AUTH_FILE                       (containers-auth.json(5))
//   2. $XDG_RUNTIME_DIR/containers/auth.json
//   3. $DOCKER_CONFIG/config.json, else ~/.docker/config.json
// In a file: `credHelpers[registry]` names a helper, else an `auths` entry (`auth`: base64
// "user:password", or `identitytoken`: an OAuth2 refresh token), else `credsStore` names a
// helper for every registry. A helper is `docker-credential-NAME get` with the registry on
// stdin and {"Username","Secret"} on stdout ("<token>" as Username means Secret is an
// identity token).
//
// Keys: Docker Hub is stored as "https://index.docker.io/v1/"; others as "HOST[:PORT]". When
// reading, an entry whose key has a scheme or a path ("https://ghcr.io", "ghcr.io/v2/") matches
// its host.
//
// Secrets never appear in messages: errors name the file and the registry, never the values.
#pragma once

#include <minibuild/base/error.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace minibuild::registry {

struct Credentials {
  std::string username;
  std::string password;
  /// An OAuth2 refresh token (`identitytoken`); when set, token requests use it instead of
  /// the password.
  std::string identity_token;

  bool operator==(const Credentials&) const = default;
};

/// The environment the lookup depends on (captured once, so tests can supply their own).
struct CredentialEnvironment {
  std::string registry_auth_file; ///< $REGISTRY_AUTH_FILE
  std::string xdg_runtime_dir;    ///< $XDG_RUNTIME_DIR
  std::string docker_config;      ///< $DOCKER_CONFIG (a directory)
  std::string home;               ///< $HOME
  /// Directories searched for docker-credential-NAME; empty = $PATH.
  std::string helper_path;

  /// Reads the variables of this process.
  static CredentialEnvironment from_process();
};

/// The key a registry host is stored under ("https://index.docker.io/v1/" for docker.io and
/// registry-1.docker.io / index.docker.io, the host itself otherwise).
std::string credential_key(std::string_view registry_host);

/// Finds the credentials for `registry_host` (the reference's domain, e.g. "docker.io",
/// "ghcr.io", "localhost:5000"); nullopt when none are configured (anonymous access). A file
/// that exists but is not valid JSON, or a helper that fails, is an error naming the file or
/// helper (Code::auth for a helper's "credentials not found" is not an error: nullopt).
Result<std::optional<Credentials>> find_credentials(const CredentialEnvironment& environment,
                                                    std::string_view registry_host);

/// Where `login` writes: $REGISTRY_AUTH_FILE when set, else $DOCKER_CONFIG/config.json or
/// ~/.docker/config.json (Docker's file, which podman and skopeo also read).
std::string login_file(const CredentialEnvironment& environment);

/// Records credentials for `registry_host` in login_file(): an `auths` entry with `auth`
/// (base64 "user:password"), or through the file's credHelpers/credsStore helper
/// (`docker-credential-NAME store`) when one is configured for the registry. Other content of
/// the file is kept. The file is written atomically with mode 0600 (its directory 0700 when
/// created).
Result<void> store_credentials(const CredentialEnvironment& environment,
                               std::string_view registry_host, const Credentials& credentials);

/// Removes the entry for `registry_host` (and asks a configured helper to `erase`). Returns
/// false when there was nothing to remove.
Result<bool> erase_credentials(const CredentialEnvironment& environment,
                               std::string_view registry_host);

} // namespace minibuild::registry
