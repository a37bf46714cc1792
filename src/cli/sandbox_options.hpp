// The sandbox options shared by `build` and `run`: --network and --security-opt, checked and
// turned into what the runtime takes.
#pragma once

#include "options.hpp"

#include <minibuild/base/error.hpp>
#include <minibuild/build/executor.hpp>
#include <minibuild/runtime/sandbox.hpp>
#include <minibuild/runtime/security.hpp>

#include <optional>

namespace minibuild::cli {

struct SandboxSettings {
  runtime::NetworkMode network = runtime::NetworkMode::host;
  std::optional<runtime::SeccompProfile> seccomp_profile; ///< nullopt: the default profile
  bool seccomp_unconfined = false;
  build::StorageDriver storage_driver = build::StorageDriver::auto_;
  /// A root step's capabilities: Docker's default set with --cap-add/--cap-drop applied.
  runtime::CapabilitySet capabilities = runtime::default_capabilities();
};

/// Checks the options: --network host|none; --storage-driver auto|overlay|vfs; --security-opt
/// seccomp=unconfined, seccomp=FILE (a Docker/OCI profile, parsed now so that a bad file fails
/// before any work) and no-new-privileges (always in effect); --cap-add/--cap-drop as Docker
/// applies them (ALL in --cap-add: every capability the kernel knows and this process's
/// bounding set still holds, less the drops; ALL in
/// --cap-drop: none, plus the adds; a name both added and dropped is an error). Anything else is
/// Code::usage naming the option.
Result<SandboxSettings> sandbox_settings(const SandboxCliOptions& options);

/// The capability set of --cap-add `add` and --cap-drop `drop` (see sandbox_settings).
Result<runtime::CapabilitySet> capabilities_of(const std::vector<std::string>& add,
                                               const std::vector<std::string>& drop);

} // namespace minibuild::cli
