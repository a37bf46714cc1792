// The command-line interface: argument parsing, subcommands, error printing, exit codes.
#pragma once

namespace minibuild::cli {

/// Runs minibuild with the given arguments and returns the process exit code (docs/cli.md).
int run(int argc, char* argv[]);

} // namespace minibuild::cli
