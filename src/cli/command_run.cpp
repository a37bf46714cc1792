// `minibuild run`: a command in a container of a stored image (build/run_image.hpp), pulled
// first when the store lacks it, as `docker run` does.
#include "commands.hpp"
#include "plan_options.hpp"
#include "registry_access.hpp"
#include "sandbox_options.hpp"
#include "store_access.hpp"

#include <minibuild/build/run_image.hpp>
#include <minibuild/registry/reference.hpp>
#include <minibuild/store/store.hpp>

#include <cstdlib>

namespace minibuild::cli {

Result<int> run_run(Context& context, const RunCommandOptions& options) {
  build::RunImageOptions run_options;
  MB_TRY_ASSIGN(SandboxSettings sandbox, sandbox_settings(options.sandbox));
  run_options.network = sandbox.network;
  run_options.seccomp_profile = std::move(sandbox.seccomp_profile);
  run_options.seccomp_unconfined = sandbox.seccomp_unconfined;
  run_options.capabilities = sandbox.capabilities;
  run_options.storage_driver = sandbox.storage_driver;
  run_options.command = options.command;
  run_options.entrypoint = options.entrypoint;
  run_options.user = options.user;
  run_options.workdir = options.workdir;
  for (const auto& entry : options.env) {
    if (entry.find('=') != std::string::npos) {
      run_options.env.push_back(entry);
    } else if (const char* value = std::getenv(entry.c_str())) {
      run_options.env.push_back(entry + "=" + value);
    }
  }
  if (options.platform.empty()) {
    run_options.platform = host_platform();
  } else {
    MB_TRY_ASSIGN(run_options.platform, oci::parse_platform(options.platform));
  }

  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(store::StoreLock lock, store->lock(store::LockMode::shared, store::Wait::yes));
  const auto pull = [&]() -> Result<void> {
    MB_TRY_ASSIGN(registry::Reference reference, registry::parse_reference(options.image));
    MB_TRY_ASSIGN(auto access, RegistryAccess::open(context));
    MB_TRY(pull_into_store(context, *access, *store, reference, run_options.platform, false, 4));
    return {};
  };
  if (options.pull == "always") {
    MB_TRY(pull());
  }
  auto result = build::run_image(*store, options.image, run_options);
  const bool missing = !result && result.error().has_tag(build::k_image_not_stored);
  if (missing && options.pull == "missing") {
    MB_TRY(pull());
    result = build::run_image(*store, options.image, run_options);
  }
  return result;
}

} // namespace minibuild::cli
