#include "sandbox_options.hpp"

#include <minibuild/base/file.hpp>

#include <sys/prctl.h>

namespace minibuild::cli {

namespace {

bool is_all(const std::string& name) {
  return name == "ALL" || name == "all";
}

// The capabilities named in --cap-add or --cap-drop; `all` is set by "ALL".
Result<runtime::CapabilitySet> named_capabilities(const std::vector<std::string>& names,
                                                  std::string_view flag, bool& all) {
  runtime::CapabilitySet set = 0;
  for (const auto& name : names) {
    if (is_all(name)) {
      all = true;
      continue;
    }
    auto number = runtime::capability_from_name(name);
    if (!number) {
      return fail(std::move(number).error().with_code(Code::usage).wrap(std::string(flag)));
    }
    set |= runtime::capability_bit(*number);
  }
  return set;
}

} // namespace

Result<runtime::CapabilitySet> capabilities_of(const std::vector<std::string>& add,
                                               const std::vector<std::string>& drop) {
  bool add_all = false;
  bool drop_all = false;
  MB_TRY_ASSIGN(const runtime::CapabilitySet added, named_capabilities(add, "--cap-add", add_all));
  MB_TRY_ASSIGN(const runtime::CapabilitySet dropped,
                named_capabilities(drop, "--cap-drop", drop_all));
  if (const runtime::CapabilitySet both = added & dropped; both != 0) {
    return fail(Code::usage,
                "--cap-add and --cap-drop both name " + runtime::format_capabilities(both));
  }
  // ALL: what the kernel knows and this process may still hand on (its bounding set: a VM or
  // container may have taken some away even from root, and capset would refuse them).
  runtime::CapabilitySet known = 0;
  for (int cap = 0; cap <= runtime::last_capability(); ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) {
      known |= runtime::capability_bit(cap);
    }
  }
  if (add_all) {
    return known & ~dropped;
  }
  if (drop_all) {
    return added;
  }
  return (runtime::default_capabilities() & ~dropped) | added;
}

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
  MB_TRY_ASSIGN(settings.capabilities, capabilities_of(options.cap_add, options.cap_drop));
  return settings;
}

} // namespace minibuild::cli
