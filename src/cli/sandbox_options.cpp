#include "sandbox_options.hpp"

#include <minibuild/base/file.hpp>

namespace minibuild::cli {

Result<SandboxSettings> sandbox_settings(const SandboxCliOptions& options) {
  SandboxSettings settings;
  if (options.network == "host" || options.network == "default") {
    settings.network = runtime::NetworkMode::host;
  } else if (options.network == "none") {
    settings.network = runtime::NetworkMode::none;
  } else {
    return fail(Code::usage, "--network " + options.network + ": expected host or none");
  }
  if (options.storage_driver == "vfs") {
    settings.storage_driver = build::StorageDriver::vfs;
  } else if (options.storage_driver == "overlay") {
    settings.storage_driver = build::StorageDriver::overlay;
  } else if (options.storage_driver != "auto") {
    return fail(Code::usage,
                "--storage-driver " + options.storage_driver + ": expected auto, overlay or vfs");
  }
  for (const auto& option : options.security_opts) {
    // Docker accepts both "seccomp=FILE" and the older "seccomp:FILE".
    const std::size_t separator = option.find_first_of("=:");
    const std::string key = option.substr(0, separator);
    const std::string value = separator == std::string::npos ? "" : option.substr(separator + 1);
    if (key == "no-new-privileges" && (value.empty() || value == "true")) {
      continue; // always in effect
    }
    if (key != "seccomp" || value.empty()) {
      return fail(Code::usage, "--security-opt " + option +
                                   ": expected seccomp=unconfined, seccomp=FILE or "
                                   "no-new-privileges");
    }
    if (value == "unconfined") {
      settings.seccomp_unconfined = true;
      settings.seccomp_profile.reset();
      continue;
    }
    auto text = read_file(value);
    if (!text) {
      return fail(
          std::move(text).error().with_code(Code::not_found).wrap("--security-opt " + option));
    }
    MB_TRY_ASSIGN(runtime::SeccompProfile profile, runtime::parse_seccomp_profile(*text, value));
    settings.seccomp_profile = std::move(profile);
    settings.seccomp_unconfined = false;
  }
  return settings;
}

} // namespace minibuild::cli
