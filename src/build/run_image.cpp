#include "run_step.hpp"
#include "stored_image.hpp"

#include <minibuild/build/run_image.hpp>
#include <minibuild/store/store.hpp>

#include <cerrno>
#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild::build {

Result<int> run_image(store::Store& store, const std::string& reference,
                      const RunImageOptions& options) {
  dockerfile::Platform platform;
  platform.os = options.platform.os;
  platform.architecture = options.platform.architecture;
  platform.variant = options.platform.variant;
  MB_TRY_ASSIGN(LoadedImage image, load_image(store, reference, platform));
  MB_TRY_ASSIGN(const std::vector<std::string> lowers,
                unpacked_lower_dirs(store, image.manifest.layers, image.config.rootfs.diff_ids));
  const oci::ContainerConfig& config = image.config.config;

  // Docker's rules: --entrypoint replaces the entrypoint and drops the image's Cmd; a command
  // on the command line replaces Cmd.
  std::vector<std::string> argv = config.entrypoint;
  std::vector<std::string> cmd = config.cmd;
  if (options.entrypoint) {
    argv.clear();
    cmd.clear();
    if (!options.entrypoint->empty()) {
      argv.push_back(*options.entrypoint);
    }
  }
  if (!options.command.empty()) {
    cmd = options.command;
  }
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  if (argv.empty()) {
    return fail(Code::usage, "image " + reference +
                                 " has no command to run: give one after "
                                 "the image name");
  }

  const BaseFileReader reader = [&lowers](const std::string& path) {
    return read_file_from_layers(lowers, path);
  };
  MB_TRY_ASSIGN(RunUser user, resolve_run_user(options.user.value_or(config.user), reader));
  MB_TRY_ASSIGN(auto scratch, Scratch::create(store.fs()));
  MB_TRY_ASSIGN(std::string run_rel, scratch->new_dir("run"));
  const std::string run_dir = scratch->absolute(run_rel);

  runtime::SandboxSpec spec;
  spec.rootfs.lower_dirs = lowers;
  spec.rootfs.upper_dir = run_dir + "/upper";
  spec.rootfs.work_dir = run_dir + "/work";
  spec.scratch_dir = run_dir + "/sandbox";
  if (options.storage_driver == StorageDriver::vfs) {
    spec.rootfs.plain_dir = run_dir + "/rootfs";
  }
  MB_TRY(make_dirs(
      {&spec.rootfs.upper_dir, &spec.rootfs.work_dir, &spec.scratch_dir, &spec.rootfs.plain_dir}));
  if (!spec.rootfs.plain_dir.empty()) {
    MB_TRY(apply_layers(store, image.manifest.layers, image.config.rootfs.diff_ids,
                        spec.rootfs.plain_dir));
  }
  spec.process.argv = std::move(argv);
  spec.process.env = run_environment(config.env, {}, user.home);
  for (const auto& entry : options.env) {
    const std::string name = entry.substr(0, entry.find('='));
    std::erase_if(spec.process.env, [&name](const std::string& existing) {
      return existing.compare(0, name.size() + 1, name + "=") == 0;
    });
    spec.process.env.push_back(entry);
  }
  spec.process.cwd = options.workdir.value_or(config.working_dir);
  if (spec.process.cwd.empty()) {
    spec.process.cwd = "/";
  }
  spec.process.uid = user.uid;
  spec.process.gid = user.gid;
  spec.process.supplementary_gids = user.groups;
  spec.process.capabilities = options.capabilities;
  MB_TRY_ASSIGN(
      spec.process.seccomp,
      sandbox_seccomp(options.seccomp_profile, options.seccomp_unconfined, options.capabilities));
  spec.network = options.network;
  spec.stdin_fd = STDIN_FILENO;
  spec.forward_signals = true; // as `docker run`: the command decides what a signal means
  spec.stdout_fd = STDOUT_FILENO;
  spec.stderr_fd = STDERR_FILENO;
  auto exit = runtime::run_in_sandbox(spec);
  if (!exit && options.storage_driver == StorageDriver::auto_ &&
      exit.error().has_tag(runtime::k_overlay_refused)) {
    // The kernel refuses overlay here: run on a copy (docs/run.md, "Storage drivers").
    std::fprintf(stderr, "minibuild: notice: overlayfs refused (%s); using a copy of the image\n",
                 exit.error().message().c_str());
    RunImageOptions copy_options = options;
    copy_options.storage_driver = StorageDriver::vfs;
    runtime::finish_sandbox_teardown();
    return run_image(store, reference, copy_options);
  }
  runtime::finish_sandbox_teardown();
  MB_TRY(exit);
  return exit->exit_code;
}

} // namespace minibuild::build
