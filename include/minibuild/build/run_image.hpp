// `minibuild run`: a command in a container of a stored image, in the same sandbox as RUN steps
// (runtime/sandbox.hpp), with the caller's stdin, stdout and stderr.
//
// Containers are not kept: the overlay upper dir lives in the store's temporary area for the
// length of the command and is removed afterwards (`--rm` is what always happens).
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/build/executor.hpp>
#include <minibuild/oci/platform.hpp>
#include <minibuild/runtime/sandbox.hpp>
#include <minibuild/runtime/security.hpp>

#include <optional>
#include <string>
#include <vector>

namespace minibuild::store {
class Store;
}

namespace minibuild::build {

/// Error tag (Error::has_tag) of a reference the store does not hold (Code::not_found): the
/// caller may pull it and try again.
inline constexpr std::string_view k_image_not_stored = "build.image-not-stored";

struct RunImageOptions {
  /// Replaces the image's Cmd when not empty (Docker's `docker run IMAGE CMD...`).
  std::vector<std::string> command;
  /// Replaces the image's Entrypoint (and drops its Cmd) when set; "" clears it.
  std::optional<std::string> entrypoint;
  std::vector<std::string> env;       ///< KEY=VALUE, after the image's Env
  std::optional<std::string> user;    ///< replaces the image's User
  std::optional<std::string> workdir; ///< replaces the image's WorkingDir
  oci::Platform platform;             ///< which manifest of an index
  runtime::NetworkMode network = runtime::NetworkMode::host;
  std::optional<runtime::SeccompProfile> seccomp_profile; ///< nullopt: the default profile
  bool seccomp_unconfined = false;
  runtime::CapabilitySet capabilities = runtime::default_capabilities();
  /// overlay on the unpacked layers; vfs: a copy of the image made for this command; auto:
  /// overlay, else vfs with a notice on stderr.
  StorageDriver storage_driver = StorageDriver::auto_;
};

/// Runs the image's entrypoint + command and returns its exit code (128 + N after signal N).
/// The caller holds the store lock shared. Code::not_found for an image that is not stored or
/// a command that does not exist in it; Code::usage when the image has no command to run.
Result<int> run_image(store::Store& store, const std::string& reference,
                      const RunImageOptions& options);

} // namespace minibuild::build
