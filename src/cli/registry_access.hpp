// How CLI commands reach registries: one transport, one authenticator and one client per
// registry host for the whole command, configured from the global options (--registry-ca,
// --insecure-registry) and the credential files (registry/credentials.hpp).
#pragma once

#include "commands.hpp"

#include <minibuild/registry/auth.hpp>
#include <minibuild/registry/client.hpp>
#include <minibuild/registry/http.hpp>
#include <minibuild/registry/pull.hpp>
#include <minibuild/registry/push.hpp>
#include <minibuild/registry/reference.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace minibuild::store {
class Store;
}

namespace minibuild::cli {

class RegistryAccess {
public:
  /// Reads the credential environment of this process; creates no connection yet. With
  /// `credentials`, every registry gets those instead of the configured ones (login checks
  /// new credentials before saving them).
  static Result<std::unique_ptr<RegistryAccess>>
  open(const Context& context, std::optional<registry::Credentials> credentials = std::nullopt);

  /// The client for the registry a reference names (created on first use).
  Result<registry::RegistryClient*> client_for(const registry::Reference& reference);
  /// The client for a registry domain ("docker.io", "localhost:5000").
  Result<registry::RegistryClient*> client_for_domain(const std::string& domain);

  const registry::CredentialEnvironment& environment() const { return m_environment; }

  /// Where clients' notices (retries) go; default: a line on stderr. Set it before any
  /// client is used.
  void set_log(std::function<void(std::string_view line)> log) { m_log = std::move(log); }

private:
  RegistryAccess() = default;

  registry::HostsConfig m_hosts;
  registry::CredentialEnvironment m_environment;
  std::unique_ptr<registry::HttpTransport> m_transport;
  std::unique_ptr<registry::Authenticator> m_auth;
  std::map<std::string, std::unique_ptr<registry::RegistryClient>> m_clients;
  bool m_debug = false;
  std::function<void(std::string_view line)> m_log;
};

/// Pull progress for a log: plain lines, one when a layer starts, one when it is done, with
/// size and rate. (On a terminal, pulls are a vertex of the live view: TtyPull.)
class PullDisplay : public registry::PullProgress {
public:
  explicit PullDisplay(std::FILE* out);
  void resolved(const registry::Reference& reference, const oci::Digest& manifest,
                std::size_t layers, std::uint64_t total_bytes) override;
  void layer_present(const oci::Descriptor& layer) override;
  void layer_started(const oci::Descriptor& layer) override;
  void layer_done(const oci::Descriptor& layer) override;
  void layer_retry(const oci::Descriptor& layer, std::string_view reason) override;
  /// Prints the closing line (total bytes, time, rate).
  void finish(const registry::PulledImage& image);

private:
  std::FILE* m_out;
  std::mutex m_mutex;
  std::map<std::string, std::chrono::steady_clock::time_point> m_started; ///< by digest
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

/// Push progress as plain lines.
class PushDisplay : public registry::PushProgress {
public:
  explicit PushDisplay(std::FILE* out) : m_out(out) {}
  void blob_skipped(const oci::Descriptor& blob) override;
  void blob_mounted(const oci::Descriptor& blob, std::string_view from) override;
  void blob_started(const oci::Descriptor& blob) override;
  void blob_done(const oci::Descriptor& blob) override;
  void manifest_pushed(const oci::Descriptor& manifest, std::string_view reference) override;

private:
  std::FILE* m_out;
  std::mutex m_mutex;
};

/// Pulls `reference` into `store` for `platform`, showing progress on stderr unless `quiet`: the
/// live view on a terminal (tty_progress_wanted), plain lines elsewhere.
Result<registry::PulledImage> pull_into_store(const Context& context, RegistryAccess& access,
                                              store::Store& store,
                                              const registry::Reference& reference,
                                              const oci::Platform& platform, bool quiet,
                                              int max_concurrent_downloads);

/// Pushes the stored image `image` (manifest or index) to `destination`.
Result<registry::PushedImage> push_from_store(RegistryAccess& access, store::Store& store,
                                              const oci::Descriptor& image,
                                              const registry::Reference& destination, bool quiet);

} // namespace minibuild::cli
