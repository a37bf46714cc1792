#include "json_read.hpp"

#include <minibuild/oci/platform.hpp>

#include <algorithm>
#include <cctype>

namespace minibuild::oci {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// containerd's specifier component rule, `[A-Za-z0-9_.-]+`.
bool is_component(std::string_view part) {
  if (part.empty()) {
    return false;
  }
  return std::all_of(part.begin(), part.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

// The os part may carry a version: `windows(10.0.17763)`; os is `[A-Za-z0-9_-]+`, the version
// `[A-Za-z0-9_.-]*`.
bool split_os_version(std::string_view part, std::string& os, std::string& version) {
  auto open = part.find('(');
  auto name = part.substr(0, open);
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '-';
      })) {
    return false;
  }
  os = std::string(name);
  version.clear();
  if (open == std::string_view::npos) {
    return true;
  }
  if (part.back() != ')') {
    return false;
  }
  auto inner = part.substr(open + 1, part.size() - open - 2);
  if (!inner.empty() && !is_component(inner)) {
    return false;
  }
  version = std::string(inner);
  return true;
}

void normalize_arch(std::string& arch, std::string& variant) {
  arch = lower(std::move(arch));
  variant = lower(std::move(variant));
  if (arch == "i386") {
    arch = "386";
    variant.clear();
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    arch = "amd64";
    if (variant == "v1") {
      variant.clear();
    }
  } else if (arch == "aarch64" || arch == "arm64") {
    arch = "arm64";
    if (variant == "8" || variant == "v8" || variant == "v8.0") {
      variant.clear();
    } else if (variant == "9" || variant == "9.0" || variant == "v9.0") {
      variant = "v9";
    }
  } else if (arch == "armhf") {
    arch = "arm";
    variant = "v7";
  } else if (arch == "armel") {
    arch = "arm";
    variant = "v6";
  } else if (arch == "arm") {
    if (variant.empty() || variant == "7") {
      variant = "v7";
    } else if (variant == "5" || variant == "6" || variant == "8") {
      variant = "v" + variant;
    }
  }
}

std::string normalize_os(std::string os) {
  os = lower(std::move(os));
  if (os == "macos") {
    os = "darwin";
  }
  return os;
}

// Windows images are compatible when major.minor.build agree; the revision may differ.
std::string_view version_prefix(std::string_view version) {
  std::size_t dots = 0;
  for (std::size_t i = 0; i < version.size(); ++i) {
    if (version[i] == '.' && ++dots == 3) {
      return version.substr(0, i);
    }
  }
  return version;
}

} // namespace

Result<Platform> parse_platform(std::string_view specifier) {
  auto bad = [&](std::string_view why) {
    return fail(Code::usage,
                "invalid platform \"" + std::string(specifier) + "\": " + std::string(why));
  };
  if (specifier.find('*') != std::string_view::npos) {
    return bad("wildcards are not supported");
  }
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    auto slash = specifier.find('/', start);
    parts.push_back(specifier.substr(start, slash - start));
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  if (parts.size() < 2) {
    return bad("expected <os>/<arch>[/<variant>], e.g. linux/amd64");
  }
  if (parts.size() > 3) {
    return bad("too many '/'-separated parts; expected <os>/<arch>[/<variant>]");
  }
  Platform platform;
  if (!split_os_version(parts[0], platform.os, platform.os_version)) {
    return bad("the os part must match [A-Za-z0-9_-]+ with an optional (version)");
  }
  platform.os = normalize_os(std::move(platform.os));
  for (std::size_t i = 1; i < parts.size(); ++i) {
    if (!is_component(parts[i])) {
      return bad("each part must match [A-Za-z0-9_.-]+");
    }
  }
  platform.architecture = std::string(parts[1]);
  platform.variant = parts.size() == 3 ? std::string(parts[2]) : std::string();
  normalize_arch(platform.architecture, platform.variant);
  // As containerd: a plain "linux/arm" keeps v7 implicit, an explicit "arm64/v8" stays
  // explicit, so to_string(parse(s)) gives back what the user wrote.
  if (parts.size() == 2 && platform.architecture == "arm" && platform.variant == "v7") {
    platform.variant.clear();
  }
  if (parts.size() == 3 && platform.architecture == "arm64" && platform.variant.empty()) {
    platform.variant = "v8";
  }
  return platform;
}

std::string to_string(const Platform& platform) {
  if (platform.os.empty()) {
    return "unknown";
  }
  std::string text = platform.os;
  if (!platform.os_version.empty()) {
    text += "(" + platform.os_version + ")";
  }
  if (!platform.architecture.empty()) {
    text += "/" + platform.architecture;
  }
  if (!platform.variant.empty()) {
    text += "/" + platform.variant;
  }
  return text;
}

Platform normalize(Platform platform) {
  platform.os = normalize_os(std::move(platform.os));
  normalize_arch(platform.architecture, platform.variant);
  return platform;
}

bool matches(const Platform& wanted, const Platform& candidate) {
  auto want = normalize(wanted);
  auto have = normalize(candidate);
  if (want.os != have.os || want.architecture != have.architecture ||
      want.variant != have.variant) {
    return false;
  }
  if (!want.os_version.empty() && !have.os_version.empty()) {
    return version_prefix(want.os_version) == version_prefix(have.os_version);
  }
  return true;
}

template <>
Result<Platform> from_json<Platform>(const nlohmann::json& json) {
  return detail::read_platform(json, "");
}

nlohmann::json to_json(const Platform& platform) {
  nlohmann::json out = nlohmann::json::object();
  out["architecture"] = platform.architecture;
  out["os"] = platform.os;
  if (!platform.variant.empty()) {
    out["variant"] = platform.variant;
  }
  if (!platform.os_version.empty()) {
    out["os.version"] = platform.os_version;
  }
  if (!platform.os_features.empty()) {
    out["os.features"] = platform.os_features;
  }
  return out;
}

std::string serialize(const Platform& platform) {
  return detail::canonical_dump(to_json(platform));
}

namespace detail {

Result<Platform> read_platform(const json& value, std::string_view path) {
  MB_TRY(expect_object(value, path, "platform"));
  Platform platform;
  MB_TRY_ASSIGN(platform.architecture, get_string(value, "architecture", path, Presence::required));
  MB_TRY_ASSIGN(platform.os, get_string(value, "os", path, Presence::required));
  MB_TRY_ASSIGN(platform.variant, get_string(value, "variant", path, Presence::optional));
  MB_TRY_ASSIGN(platform.os_version, get_string(value, "os.version", path, Presence::optional));
  MB_TRY_ASSIGN(platform.os_features,
                get_string_array(value, "os.features", path, Presence::optional));
  return platform;
}

} // namespace detail

} // namespace minibuild::oci
