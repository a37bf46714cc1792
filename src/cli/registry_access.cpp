// Registry plumbing shared by pull, push, login and build (registry_access.hpp).
#include "registry_access.hpp"

#include "progress_tty.hpp"
#include "store_access.hpp"
#include "store_format.hpp"

#include <minibuild/registry/credentials.hpp>
#include <minibuild/registry/hosts.hpp>
#include <minibuild/store/name_store.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <set>

namespace minibuild::cli {

Result<std::unique_ptr<RegistryAccess>>
RegistryAccess::open(const Context& context, std::optional<registry::Credentials> credentials) {
  std::unique_ptr<RegistryAccess> access(new RegistryAccess());
  access->m_hosts.extra_ca_files = context.global().registry_ca_files;
  access->m_hosts.insecure_registries = context.global().insecure_registries;
  // Rootless podman also reads the user's own certs.d; so do we, first (docs/registry.md).
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    access->m_hosts.certs_dirs.insert(access->m_hosts.certs_dirs.begin(),
                                      std::string(home) + "/.config/containers/certs.d");
  }
  access->m_environment = registry::CredentialEnvironment::from_process();
  access->m_debug = context.global().debug;
  MB_TRY_ASSIGN(access->m_transport, registry::make_curl_transport());
  registry::CredentialEnvironment environment = access->m_environment;
  access->m_auth = std::make_unique<registry::Authenticator>(
      *access->m_transport,
      [environment,
       credentials](std::string_view domain) -> Result<std::optional<registry::Credentials>> {
        if (credentials) {
          return credentials;
        }
        return registry::find_credentials(environment, domain);
      });
  return access;
}

Result<registry::RegistryClient*> RegistryAccess::client_for(const registry::Reference& reference) {
  return client_for_domain(reference.domain);
}

Result<registry::RegistryClient*> RegistryAccess::client_for_domain(const std::string& domain) {
  registry::Reference target;
  target.domain = domain;
  const std::string host = target.api_host();
  if (auto found = m_clients.find(host); found != m_clients.end()) {
    return found->second.get();
  }
  MB_TRY_ASSIGN(registry::HostSettings settings, registry::resolve_host(m_hosts, host));
  registry::ClientOptions options;
  // Retries are worth a line on stderr: a CI log then shows why a pull was slow.
  options.log = [this](std::string_view line) {
    if (m_log) {
      m_log(line);
    } else {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
  };
  auto client = std::make_unique<registry::RegistryClient>(*m_transport, *m_auth,
                                                           std::move(settings), domain, options);
  auto* raw = client.get();
  m_clients.emplace(host, std::move(client));
  return raw;
}

namespace {

std::string short_digest(const oci::Digest& digest) {
  return digest.hex().substr(0, 12);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string rate(std::uint64_t bytes, double seconds) {
  if (seconds <= 0.0) {
    return "-";
  }
  return human_size(static_cast<std::uint64_t>(static_cast<double>(bytes) / seconds)) + "/s";
}

} // namespace

PullDisplay::PullDisplay(std::FILE* out) : m_out(out) {}

void PullDisplay::resolved(const registry::Reference& reference, const oci::Digest& manifest,
                           std::size_t layers, std::uint64_t total_bytes) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "pulling %s (%s): %zu layers, %s\n", reference.to_string().c_str(),
               manifest.to_string().c_str(), layers, human_size(total_bytes).c_str());
}

void PullDisplay::layer_present(const oci::Descriptor& layer) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "layer %s: already in the store\n", short_digest(layer.digest).c_str());
}

void PullDisplay::layer_started(const oci::Descriptor& layer) {
  std::lock_guard lock(m_mutex);
  m_started[layer.digest.to_string()] = std::chrono::steady_clock::now();
  std::fprintf(m_out, "layer %s: downloading %s\n", short_digest(layer.digest).c_str(),
               human_size(static_cast<std::uint64_t>(layer.size)).c_str());
}

void PullDisplay::layer_done(const oci::Descriptor& layer) {
  std::lock_guard lock(m_mutex);
  const auto size = static_cast<std::uint64_t>(layer.size);
  const auto started = m_started.find(layer.digest.to_string());
  const double seconds = started == m_started.end() ? 0.0 : seconds_since(started->second);
  std::fprintf(m_out, "layer %s: done %s in %.1fs (%s)\n", short_digest(layer.digest).c_str(),
               human_size(size).c_str(), seconds, rate(size, seconds).c_str());
}

void PullDisplay::layer_retry(const oci::Descriptor& layer, std::string_view reason) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "layer %s: retrying from the start: %.*s\n",
               short_digest(layer.digest).c_str(), static_cast<int>(reason.size()), reason.data());
}

void PullDisplay::finish(const registry::PulledImage& image) {
  std::lock_guard lock(m_mutex);
  const double seconds = seconds_since(m_start);
  std::fprintf(m_out, "pulled %s: %s downloaded in %.1fs (%s), %zu layers already present\n",
               image.reference.to_string().c_str(), human_size(image.downloaded_bytes).c_str(),
               seconds, rate(image.downloaded_bytes, seconds).c_str(), image.layers_present);
}

void PushDisplay::blob_skipped(const oci::Descriptor& blob) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "blob %s: already in the registry\n", short_digest(blob.digest).c_str());
}

void PushDisplay::blob_mounted(const oci::Descriptor& blob, std::string_view from) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "blob %s: mounted from %.*s\n", short_digest(blob.digest).c_str(),
               static_cast<int>(from.size()), from.data());
}

void PushDisplay::blob_started(const oci::Descriptor& blob) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "blob %s: uploading %s\n", short_digest(blob.digest).c_str(),
               human_size(static_cast<std::uint64_t>(blob.size)).c_str());
}

void PushDisplay::blob_done(const oci::Descriptor& blob) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "blob %s: done\n", short_digest(blob.digest).c_str());
}

void PushDisplay::manifest_pushed(const oci::Descriptor& manifest, std::string_view reference) {
  std::lock_guard lock(m_mutex);
  std::fprintf(m_out, "pushed %.*s: %s\n", static_cast<int>(reference.size()), reference.data(),
               manifest.digest.to_string().c_str());
}

// On a terminal that is not "dumb": the build's live view (progress_tty.hpp) with the pull as
// its one vertex; elsewhere plain lines as the layers go; nothing when quiet.
Result<registry::PulledImage> pull_into_store(const Context& context, RegistryAccess& access,
                                              store::Store& store,
                                              const registry::Reference& reference,
                                              const oci::Platform& platform, bool quiet,
                                              int max_concurrent_downloads) {
  MB_TRY_ASSIGN(registry::RegistryClient * client, access.client_for(reference));
  registry::PullOptions options;
  options.platform = platform;
  options.max_concurrent_downloads = max_concurrent_downloads;
  const bool live = !quiet && tty_progress_wanted(context.stderr_is_tty(), std::getenv("TERM"));
  // Plain lines as the layers go, or only the closing line after the live view.
  PullDisplay display(stderr);
  Result<registry::PulledImage> pulled;
  if (live) {
    TtyProgress::Options view_options;
    view_options.ticker = Ticker::yes;
    view_options.title = "Pulling";
    TtyProgress view(stderr, std::move(view_options));
    {
      TtyPull pull(view, "pull " + reference.to_string());
      options.progress = &pull;
      pulled = registry::pull_image(*client, store, reference, options);
      pull.end(pulled.has_value());
    }
    view.finish();
  } else {
    options.progress = quiet ? nullptr : &display;
    pulled = registry::pull_image(*client, store, reference, options);
  }
  if (!pulled) {
    return fail(std::move(pulled).error().wrap("pull " + reference.to_string()));
  }
  if (!quiet) {
    display.finish(*pulled);
  }
  return pulled;
}

Result<registry::PushedImage> push_from_store(RegistryAccess& access, store::Store& store,
                                              const oci::Descriptor& image,
                                              const registry::Reference& destination, bool quiet) {
  MB_TRY_ASSIGN(registry::RegistryClient * client, access.client_for(destination));
  registry::PushOptions options;
  // Other repositories of the same registry that this store has images from may already hold
  // the base layers: the registry can mount them instead of receiving them again.
  MB_TRY_ASSIGN(auto names, store.names().list());
  std::set<std::string> seen;
  for (const auto& named : names) {
    auto parsed = registry::parse_reference(named.name);
    if (parsed && parsed->domain == destination.domain && parsed->path != destination.path &&
        seen.insert(parsed->path).second && options.mount_from.size() < 3) {
      options.mount_from.push_back(parsed->path);
    }
  }
  PushDisplay display(stderr);
  options.progress = quiet ? nullptr : &display;
  auto pushed = registry::push_image(*client, store, image, destination, options);
  if (!pushed) {
    return fail(std::move(pushed).error().wrap("push " + destination.to_string()));
  }
  return pushed;
}

} // namespace minibuild::cli
