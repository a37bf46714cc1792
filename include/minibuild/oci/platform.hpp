// The platform an image runs on (image-index.md "platform"; Go specs.Platform), the
// "os/arch/variant" specifiers users write (`--platform linux/arm64`), and the normalisation
// and matching rules of containerd's platforms package, so that "aarch64", "arm64" and
// "arm64/v8" name the same thing.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/json.hpp>

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace minibuild::oci {

/// A platform as written in an index entry or an image config. Fields hold what was read or
/// set, not normalised: call normalize() before comparing by hand.
struct Platform {
  std::string os;                       ///< "linux", "windows"; required in JSON
  std::string architecture;             ///< GOARCH spelling: "amd64", "arm64"; required in JSON
  std::string variant;                  ///< CPU variant: "v7", "v8"; optional
  std::string os_version;               ///< "os.version", e.g. Windows "10.0.17763.1040"
  std::vector<std::string> os_features; ///< "os.features", e.g. "win32k"

  bool operator==(const Platform&) const = default;
};

/// A platform from its three everyday parts; os.version and os.features stay empty. Not
/// normalised: pass the result through normalize() when it comes from user input.
inline Platform make_platform(std::string os, std::string architecture, std::string variant = {}) {
  Platform platform;
  platform.os = std::move(os);
  platform.architecture = std::move(architecture);
  platform.variant = std::move(variant);
  return platform;
}

/// Parses a specifier `<os>[(<os.version>)]/<arch>[/<variant>]`, e.g. "linux/amd64",
/// "linux/arm/v7", "windows(10.0.17763)/amd64". As containerd: the os is lower-cased ("macos"
/// becomes "darwin"); the architecture and variant go through normalize()'s table, except that
/// a two-part "linux/arm" keeps an empty variant (v7 is implied) and "linux/arm64/v8" keeps its
/// explicit "v8". Components must match `[A-Za-z0-9_.-]+`. A specifier with only an os or only
/// an architecture is refused (minibuild never guesses from the host here), as are wildcards
/// and more than three parts. Errors have Code::usage and quote the specifier.
Result<Platform> parse_platform(std::string_view specifier);

/// "os/arch[/variant]", the inverse of parse_platform for platforms without os.version;
/// "os(version)/arch[/variant]" otherwise. "unknown" when os is empty.
std::string to_string(const Platform& platform);

/// containerd's Normalize: os and architecture lower-cased, "macos" → "darwin";
/// "i386" → "386" (no variant); "x86_64"/"x86-64" → "amd64" (variant "v1" dropped);
/// "aarch64" → "arm64", variants "8"/"v8"/"v8.0" → "" (v8 is the default), "9"/"9.0"/"v9.0" →
/// "v9"; "armhf" → "arm/v7"; "armel" → "arm/v6"; "arm" with variant "" or "7" → "v7"
/// (the default), "5"/"6"/"8" → "v5"/"v6"/"v8". os.version and os.features are unchanged.
Platform normalize(Platform platform);

/// Whether an image for `candidate` satisfies a request for `wanted`: after normalize(), os,
/// architecture and variant must be equal. When both carry an os.version, the first three
/// dot-separated components (major.minor.build, Windows' compatibility rule) must also agree.
/// So "linux/arm64" matches "linux/arm64/v8", and "linux/arm" matches "linux/arm/v7" but not
/// "linux/arm/v6". No cross-variant compatibility is assumed (an arm/v7 host is not offered
/// arm/v6 images).
bool matches(const Platform& wanted, const Platform& candidate);

/// Reads {"architecture", "os", "variant"?, "os.version"?, "os.features"?}. Both architecture
/// and os are required, as the index schema says.
template <>
Result<Platform> from_json<Platform>(const nlohmann::json& json);

/// `os.version`, `os.features` and `variant` are omitted when empty (Go `omitempty`).
nlohmann::json to_json(const Platform& platform);

/// Canonical bytes (see json.hpp).
std::string serialize(const Platform& platform);

} // namespace minibuild::oci
