#include <minibuild/registry/reference.hpp>

#include <algorithm>
#include <vector>

namespace minibuild::registry {

namespace {

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_alnum(char c) {
  return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_word(char c) {
  return is_alnum(c) || c == '_';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool has_upper(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

// [a-z0-9]+ ((?:[._]|__|[-]+)[a-z0-9]+)*, matched by hand: runs of alphanumerics joined by
// exactly one of ".", "_", "__" or any number of '-'. The asymmetry (many dashes, at most two
// underscores) is deliberate upstream, so hostnames like "xn--n3h" fit as path components.
bool is_path_component(std::string_view text) {
  std::size_t i = 0;
  while (true) {
    const std::size_t run_start = i;
    while (i < text.size() && is_lower_alnum(text[i])) {
      ++i;
    }
    if (i == run_start) {
      return false; // empty component, or a separator at the start, end or next to another
    }
    if (i == text.size()) {
      return true;
    }
    const std::size_t sep_start = i;
    if (text[i] == '.') {
      ++i;
    } else if (text[i] == '_') {
      ++i;
      if (i < text.size() && text[i] == '_') {
        ++i;
      }
    } else if (text[i] == '-') {
      while (i < text.size() && text[i] == '-') {
        ++i;
      }
    }
    if (i == sep_start) {
      return false; // a character outside the grammar
    }
  }
}

// [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool is_domain_name_component(std::string_view text) {
  if (text.empty() || !is_alnum(text.front()) || !is_alnum(text.back())) {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

// host [":" port] with host a dotted domain name (IPv4 included) or "[" ipv6 "]". Upstream
// accepts any hex digits and colons between the brackets (no zone id, no embedded IPv4).
bool is_domain(std::string_view text) {
  std::string_view host = text;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) {
      return false;
    }
    const std::string_view inner = text.substr(1, close - 1);
    if (!std::all_of(inner.begin(), inner.end(), [](char c) { return is_hex(c) || c == ':'; })) {
      return false;
    }
    rest = text.substr(close + 1);
  } else {
    const std::size_t colon = text.find(':');
    host = text.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
    for (std::string_view component : split(host, '.')) {
      if (!is_domain_name_component(component)) {
        return false;
      }
    }
  }
  if (rest.empty()) {
    return true;
  }
  const std::string_view port = rest.substr(1);
  return rest.front() == ':' && !port.empty() && std::all_of(port.begin(), port.end(), is_digit);
}

// [\w][\w.-]{0,127}
bool is_tag(std::string_view text) {
  if (text.empty() || text.size() > 128 || !is_word(text.front())) {
    return false;
  }
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return is_word(c) || c == '.' || c == '-'; });
}

// Docker refuses a bare 64-hex name: it would be ambiguous with an image ID.
bool is_identifier(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return is_digit(c) || (c >= 'a' && c <= 'f');
         });
}

std::string quote(std::string_view text) {
  constexpr std::size_t k_max_quoted = 300;
  if (text.size() > k_max_quoted) {
    return "\"" + std::string(text.substr(0, k_max_quoted)) + "...\"";
  }
  return "\"" + std::string(text) + "\"";
}

// Loopback check for is_insecure_by_default(): dotted-quad 127.x.y.z with each part 0..255.
bool is_loopback_ipv4(std::string_view host) {
  const std::vector<std::string_view> parts = split(host, '.');
  if (parts.size() != 4 || parts[0] != "127") {
    return false;
  }
  return std::all_of(parts.begin(), parts.end(), [](std::string_view part) {
    return !part.empty() && part.size() <= 3 && std::all_of(part.begin(), part.end(), is_digit) &&
           std::stoi(std::string(part)) <= 255;
  });
}

} // namespace

Result<Reference> parse_reference(std::string_view text) {
  const auto invalid = [text](const std::string& what) {
    return fail(Code::usage, "invalid image reference " + quote(text) + ": " + what);
  };
  if (text.empty()) {
    return invalid("reference is empty");
  }
  if (is_identifier(text)) {
    return invalid("a 64-character hexadecimal string is an image ID, not a repository name");
  }

  Reference ref;
  // Neither name nor tag may contain '@', so the first one starts the digest.
  std::string_view name_and_tag = text;
  if (const std::size_t at = text.find('@'); at != std::string_view::npos) {
    name_and_tag = text.substr(0, at);
    const std::string_view digest_text = text.substr(at + 1);
    auto digest = oci::Digest::parse(digest_text);
    if (!digest) {
      Error error = std::move(digest).error();
      if (error.code() == Code::unsupported) {
        return fail(std::move(error).wrap("image reference " + quote(text)));
      }
      return invalid("invalid digest " + quote(digest_text) + ": " + error.message());
    }
    ref.digest = std::move(*digest);
  }

  // A ':' after the last '/' starts the tag; earlier ones belong to the domain's port or IPv6.
  std::string_view name = name_and_tag;
  const std::size_t colon = name_and_tag.rfind(':');
  const std::size_t slash = name_and_tag.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    name = name_and_tag.substr(0, colon);
    const std::string_view tag = name_and_tag.substr(colon + 1);
    if (!is_tag(tag)) {
      return invalid("invalid tag " + quote(tag) +
                     " (want 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-')");
    }
    ref.tag = std::string(tag);
  }
  if (name.empty()) {
    return invalid("repository name is empty");
  }

  // Which first component is a registry host: see the header (normalize.go splitDockerDomain).
  std::string_view path = name;
  const std::size_t first_slash = name.find('/');
  if (first_slash == std::string_view::npos) {
    ref.domain = std::string(k_docker_hub_domain);
  } else {
    const std::string_view first = name.substr(0, first_slash);
    if (first == "localhost" || first.find_first_of(".:") != std::string_view::npos ||
        has_upper(first)) {
      ref.domain =
          first == "index.docker.io" ? std::string(k_docker_hub_domain) : std::string(first);
      path = name.substr(first_slash + 1);
      if (!is_domain(first)) {
        return invalid("invalid registry host " + quote(first));
      }
    } else {
      ref.domain = std::string(k_docker_hub_domain);
    }
  }
  if (has_upper(path)) {
    return invalid("repository name " + quote(path) + " must be lowercase");
  }
  for (std::string_view component : split(path, '/')) {
    if (component.empty()) {
      return invalid("empty path component in repository name " + quote(path));
    }
    if (!is_path_component(component)) {
      return invalid("invalid path component " + quote(component) +
                     " (want lower-case letters and digits, separated by '.', '_', '__' or "
                     "dashes)");
    }
  }
  ref.path = std::string(path);
  if (ref.domain == k_docker_hub_domain && ref.path.find('/') == std::string::npos) {
    ref.path = "library/" + ref.path;
  }
  if (const std::size_t length = ref.repository().size(); length > k_max_name_length) {
    return invalid("repository name is " + std::to_string(length) + " characters, longer than " +
                   std::to_string(k_max_name_length));
  }
  if (!ref.tag && !ref.digest) {
    ref.tag = std::string(k_default_tag);
  }
  return ref;
}

std::string Reference::repository() const {
  return domain + "/" + path;
}

std::string Reference::to_string() const {
  std::string text = repository();
  if (tag) {
    text += ":" + *tag;
  }
  if (digest) {
    text += "@" + digest->to_string();
  }
  return text;
}

std::string Reference::familiar_name() const {
  if (domain != k_docker_hub_domain) {
    return repository();
  }
  // Only a lone "library/" prefix goes: "library/foo/bar" must stay distinguishable from the
  // user "foo"'s repository "bar".
  constexpr std::string_view k_library = "library/";
  const std::string_view rest =
      std::string_view(path).substr(path.starts_with(k_library) ? k_library.size() : 0);
  if (path.starts_with(k_library) && rest.find('/') == std::string_view::npos) {
    return std::string(rest);
  }
  return path;
}

std::string Reference::familiar_string() const {
  std::string text = familiar_name();
  if (tag) {
    text += ":" + *tag;
  }
  if (digest) {
    text += "@" + digest->to_string();
  }
  return text;
}

std::string Reference::api_host() const {
  return domain == k_docker_hub_domain ? std::string(k_docker_hub_api_host) : domain;
}

bool Reference::is_insecure_by_default() const {
  std::string_view host = domain;
  if (host.starts_with('[')) {
    host = host.substr(1, host.find(']') - 1);
    return host == "::1" || host == "0:0:0:0:0:0:0:1";
  }
  host = host.substr(0, host.find(':'));
  return host == "localhost" || is_loopback_ipv4(host);
}

} // namespace minibuild::registry
