// `minibuild pull`, `push`, `login` and `logout`: the registry commands (registry_access.hpp
// holds the shared plumbing, src/registry/ the protocol).
#include "commands.hpp"
#include "plan_options.hpp"
#include "progress_tty.hpp"
#include "registry_access.hpp"
#include "store_access.hpp"

#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/credentials.hpp>
#include <minibuild/store/store.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <termios.h>
#include <unistd.h>

namespace minibuild::cli {

namespace {

Result<oci::Platform> platform_option(const std::string& text) {
  if (text.empty()) {
    return host_platform();
  }
  MB_TRY_CONTEXT(oci::parse_platform(text), "--platform");
  return oci::parse_platform(text);
}

// A stored blob's media type when the name did not record one (an image found by id): the
// mediaType field every manifest and index minibuild stores carries.
Result<std::string> stored_media_type(store::Store& store, const oci::Digest& digest) {
  MB_TRY_ASSIGN(std::string bytes, store.blobs().read(digest, 4 << 20));
  const std::string type = oci::sniff_media_type(bytes).value_or("");
  return type.empty() ? std::string(oci::k_oci_manifest) : type;
}

// What `login` and `logout` accept as a server: "host[:port]", also with a scheme or a path
// as people paste them ("https://ghcr.io/", "https://index.docker.io/v1/").
std::string server_domain(std::string server) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (server.rfind(scheme, 0) == 0) {
      server.erase(0, scheme.size());
    }
  }
  if (const auto slash = server.find('/'); slash != std::string::npos) {
    server.erase(slash);
  }
  if (server == "index.docker.io" || server == "registry-1.docker.io") {
    server = "docker.io";
  }
  return server;
}

// Reads one line from the terminal with echo off (the password prompt).
Result<std::string> read_secret_from_tty(const std::string& prompt) {
  std::fprintf(stderr, "%s", prompt.c_str());
  std::fflush(stderr);
  termios saved{};
  const bool tty = ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::fprintf(stderr, "\n");
  }
  return line;
}

} // namespace

Result<void> run_pull(Context& context, const PullCommandOptions& options) {
  MB_TRY_ASSIGN(registry::Reference reference, registry::parse_reference(options.image));
  MB_TRY_ASSIGN(oci::Platform platform, platform_option(options.platform));
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(store::StoreLock lock, store->lock(store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(auto access, RegistryAccess::open(context));
  MB_TRY_ASSIGN(registry::PulledImage pulled,
                pull_into_store(context, *access, *store, reference, platform, options.quiet,
                                options.max_concurrent_downloads));
  if (options.quiet) {
    std::printf("%s\n", pulled.manifest.config.digest.to_string().c_str());
  } else {
    std::printf("%s\n", reference.to_string().c_str());
  }
  return {};
}

Result<void> run_push(Context& context, const PushCommandOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(store::StoreLock lock, store->lock(store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(ImageRef image, find_image(*store, options.image, ById::yes));
  std::string destination_text = options.destination;
  if (destination_text.empty()) {
    if (image.name.empty()) {
      return fail(Code::usage, "push " + options.image +
                                   ": an image named by id needs a destination "
                                   "(minibuild push ID REGISTRY/REPO:TAG)");
    }
    destination_text = image.name;
  }
  MB_TRY_ASSIGN(registry::Reference destination, registry::parse_reference(destination_text));
  oci::Descriptor target;
  target.digest = image.digest;
  target.media_type = image.media_type;
  if (target.media_type.empty()) {
    MB_TRY_ASSIGN(target.media_type, stored_media_type(*store, image.digest));
  }
  MB_TRY_ASSIGN(auto stat, store->blobs().stat(image.digest));
  if (!stat) {
    return fail(Code::corrupt, "push " + options.image + ": its manifest " +
                                   image.digest.to_string() + " is missing from the store");
  }
  target.size = static_cast<std::int64_t>(stat->size);
  MB_TRY_ASSIGN(auto access, RegistryAccess::open(context));
  MB_TRY_ASSIGN(registry::PushedImage pushed,
                push_from_store(*access, *store, target, destination, options.quiet));
  std::printf("%s\n", pushed.target.digest.to_string().c_str());
  if (!options.digestfile.empty()) {
    MB_TRY(write_result_file("--digestfile", options.digestfile, pushed.target.digest.to_string()));
  }
  return {};
}

Result<void> run_login(Context& context, const LoginOptions& options) {
  const std::string domain = server_domain(options.server);
  registry::Credentials credentials;
  credentials.username = options.username;
  if (credentials.username.empty()) {
    if (options.password_stdin || ::isatty(STDIN_FILENO) == 0) {
      return fail(Code::usage, "login " + domain + ": give the user name with -u");
    }
    MB_TRY_ASSIGN(credentials.username, read_secret_from_tty("Username: "));
  }
  if (options.password_stdin) {
    if (!options.password.empty()) {
      return fail(Code::usage, "login: --password and --password-stdin exclude each other");
    }
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) {
      all.pop_back();
    }
    credentials.password = std::move(all);
  } else if (!options.password.empty()) {
    std::fprintf(stderr, "warning: a password on the command line is visible to other users; "
                         "use --password-stdin\n");
    credentials.password = options.password;
  } else if (::isatty(STDIN_FILENO) != 0) {
    MB_TRY_ASSIGN(credentials.password, read_secret_from_tty("Password: "));
  } else {
    return fail(Code::usage, "login " + domain + ": give the password with --password-stdin");
  }
  if (credentials.password.empty()) {
    return fail(Code::usage, "login " + domain + ": the password is empty");
  }

  // Check the credentials against the registry before saving them, as docker login does.
  MB_TRY_ASSIGN(auto access, RegistryAccess::open(context, credentials));
  MB_TRY_ASSIGN(registry::RegistryClient * client, access->client_for_domain(domain));
  MB_TRY_CONTEXT(client->ping(), "login " + domain);
  MB_TRY_CONTEXT(registry::store_credentials(access->environment(), domain, credentials),
                 "login " + domain);
  std::fprintf(stderr, "credentials for %s saved in %s\n", domain.c_str(),
               registry::login_file(access->environment()).c_str());
  std::printf("Login Succeeded\n");
  return {};
}

Result<void> run_logout(Context& /*context*/, const LogoutOptions& options) {
  const std::string domain = server_domain(options.server);
  const auto environment = registry::CredentialEnvironment::from_process();
  MB_TRY_ASSIGN(bool removed, registry::erase_credentials(environment, domain));
  if (!removed) {
    return fail(Code::not_found, "logout " + domain + ": not logged in (no credentials in " +
                                     registry::login_file(environment) + ")");
  }
  std::printf("Removed login credentials for %s\n", domain.c_str());
  return {};
}

} // namespace minibuild::cli
