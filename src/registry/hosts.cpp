// Per-host TLS and plain-HTTP settings (hosts.hpp).
//
// One rule covers both certs.d layouts: Docker's ca.crt / client.cert / client.key are the
// special case of the containers rule (every *.crt a CA, every *.cert with the *.key of the same
// stem a client pair), and Docker's daemon reads its directory the same way.
#include <minibuild/registry/hosts.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <dirent.h>
#include <memory>

namespace minibuild::registry {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// "HOST[:PORT]" or "[V6][:PORT]" → the host part, brackets kept.
std::string_view host_part(std::string_view host_and_port) {
  if (host_and_port.starts_with('[')) {
    const std::size_t close = host_and_port.find(']');
    return close == std::string_view::npos ? host_and_port : host_and_port.substr(0, close + 1);
  }
  return host_and_port.substr(0, host_and_port.find(':'));
}

bool has_port(std::string_view host_and_port) {
  return host_part(host_and_port).size() != host_and_port.size();
}

bool is_loopback_ipv4(std::string_view host) {
  int parts = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = std::min(host.find('.', start), host.size());
    const std::string_view part = host.substr(start, end - start);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), is_digit)) {
      return false;
    }
    int value = 0;
    for (char c : part) {
      value = value * 10 + (c - '0');
    }
    if (value > 255 || (parts == 0 && value != 127)) {
      return false;
    }
    ++parts;
    if (end == host.size()) {
      return parts == 4;
    }
    start = end + 1;
  }
}

bool ends_with(std::string_view name, std::string_view suffix) {
  return name.size() > suffix.size() && name.ends_with(suffix);
}

// The sorted names in `dir`; an empty list when it does not exist.
Result<std::vector<std::string>> list_names(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(dir.c_str()), &::closedir);
  if (!handle) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::vector<std::string>{};
    }
    return fail_errno(errno, "open certificate directory \"" + dir + "\"");
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(handle.get());
    if (entry == nullptr) {
      if (errno != 0) {
        return fail_errno(errno, "read certificate directory \"" + dir + "\"");
      }
      break;
    }
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Adds the CAs and the client pair of one certs.d/HOST directory to `tls`. The first client
// pair found (directories in order, names sorted) is used; TlsSettings holds one.
Result<void> read_certs_dir(const std::string& dir, TlsSettings& tls) {
  MB_TRY_ASSIGN(const std::vector<std::string> names, list_names(dir));
  const auto has = [&](const std::string& name) {
    return std::binary_search(names.begin(), names.end(), name);
  };
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    if (ends_with(name, ".crt")) {
      tls.ca_files.push_back(path);
    } else if (ends_with(name, ".cert")) {
      const std::string key = name.substr(0, name.size() - 5) + ".key";
      if (!has(key)) {
        return fail(Code::usage,
                    "client certificate \"" + path + "\" has no key \"" + dir + "/" + key + "\"");
      }
      if (tls.client_cert_file.empty()) {
        tls.client_cert_file = path;
        tls.client_key_file = dir + "/" + key;
      }
    } else if (ends_with(name, ".key")) {
      const std::string cert = name.substr(0, name.size() - 4) + ".cert";
      if (!has(cert)) {
        return fail(Code::usage,
                    "client key \"" + path + "\" has no certificate \"" + dir + "/" + cert + "\"");
      }
    }
  }
  return {};
}

} // namespace

bool is_loopback_host(std::string_view host_and_port) {
  const std::string_view host = host_part(host_and_port);
  if (host.starts_with('[')) {
    return host == "[::1]" || host == "[0:0:0:0:0:0:0:1]";
  }
  return host == "localhost" || is_loopback_ipv4(host);
}

Result<HostSettings> resolve_host(const HostsConfig& config, std::string_view host) {
  // The host names a directory below each certs dir: refuse anything that could step outside.
  if (host.empty() || host == "." || host == ".." || host.find('/') != std::string_view::npos ||
      host.find('\0') != std::string_view::npos) {
    return fail(Code::usage, "invalid registry host \"" + std::string(host) + "\"");
  }
  HostSettings settings;
  settings.host = std::string(host);
  settings.allow_plain_http =
      is_loopback_host(host) ||
      std::any_of(config.insecure_registries.begin(), config.insecure_registries.end(),
                  [&](const std::string& entry) {
                    return has_port(entry) ? equal_ignoring_case(entry, host)
                                           : equal_ignoring_case(entry, host_part(host));
                  });
  settings.tls.ca_files = config.extra_ca_files;
  for (const std::string& certs_dir : config.certs_dirs) {
    MB_TRY_CONTEXT(read_certs_dir(certs_dir + "/" + settings.host, settings.tls),
                   "registry " + settings.host);
  }
  return settings;
}

} // namespace minibuild::registry
