// The subcommands. Each takes the shared Context and its own options and returns Result<void>;
// app.cpp prints the error and maps it to an exit code.
#pragma once

#include "options.hpp"

#include <minibuild/base/error.hpp>

#include <map>
#include <string>
#include <string_view>

namespace minibuild::cli {

/// What every command may use: the global options, whether stderr is a terminal, and the texts
/// of the user files read so far (so an error pointing into one can quote the line).
class Context {
public:
  Context(GlobalOptions global, bool stderr_is_tty)
      : m_global(std::move(global)), m_stderr_is_tty(stderr_is_tty) {}

  const GlobalOptions& global() const { return m_global; }
  bool stderr_is_tty() const { return m_stderr_is_tty; }

  /// Reads a user file (a Dockerfile; "-" is stdin) and remembers its text under `display_name`.
  Result<std::string> read_user_file(const std::string& path, const std::string& display_name);
  /// The remembered text of the file an error's location names, or empty.
  std::string_view source_text_for(const Error& error) const;

private:
  GlobalOptions m_global;
  bool m_stderr_is_tty;
  std::map<std::string, std::string> m_sources;
};

/// Writes a small result file a flag asks for (--iidfile, --digestfile); errors name the flag.
Result<void> write_result_file(std::string_view flag, const std::string& path,
                               const std::string& text);

Result<void> run_build(Context& context, const BuildOptions& options);
Result<void> run_parse(Context& context, const ParseOptions& options);
Result<void> run_version(Context& context, const std::string& format);
Result<void> run_pull(Context& context, const PullCommandOptions& options);
Result<void> run_push(Context& context, const PushCommandOptions& options);
Result<void> run_login(Context& context, const LoginOptions& options);
Result<void> run_logout(Context& context, const LogoutOptions& options);
/// `minibuild run`: the command's exit code (128 + N after signal N) is the result.
Result<int> run_run(Context& context, const RunCommandOptions& options);
/// `minibuild cache ls`: the build cache's entries, most recently used first.
Result<void> run_cache_ls(Context& context, const CacheLsOptions& options);
/// `minibuild cache prune`: prunes cache entries, then collects the store (store::prune).
Result<void> run_cache_prune(Context& context, const CachePruneCommandOptions& options);

} // namespace minibuild::cli
