// The parts of a RUN step that are plain logic, apart from the executor: who the step runs as,
// its environment and command line, reading a file of the stage's layers without mounting
// them, and taking the sandbox's mount points back out of the overlay upper dir.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/build/owner.hpp>
#include <minibuild/dockerfile/instructions.hpp>
#include <minibuild/dockerfile/shell_lexer.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/runtime/security.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {
class Store;
}

namespace minibuild::build {

/// The overlay lower dirs of an image or stage, TOP FIRST: each layer unpacked in the store
/// (unpacked now when it is not yet). `layers` and `diff_ids` are parallel, bottom first.
Result<std::vector<std::string>> unpacked_lower_dirs(store::Store& store,
                                                     const std::vector<oci::Descriptor>& layers,
                                                     const std::vector<oci::Digest>& diff_ids);

/// The user a RUN step (or `minibuild run`) runs as.
struct RunUser {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> groups; ///< supplementary groups, the primary one included
  std::string home = "/";            ///< from /etc/passwd; "/" when unknown (as runc does)
};

/// The filter of a sandboxed process: none with `unconfined`, else `profile` (nullopt: the
/// default profile) compiled for `capabilities`. Shared by RUN steps and `minibuild run`.
Result<std::optional<runtime::SeccompProgram>>
sandbox_seccomp(const std::optional<runtime::SeccompProfile>& profile, bool unconfined,
                runtime::CapabilitySet capabilities);

/// Creates each non-empty path of `dirs` (mode 0755); the parents must exist.
Result<void> make_dirs(const std::vector<const std::string*>& dirs);

/// Resolves the config's USER (`name`, `uid`, `name:group`, `uid:gid`; empty = root) against the
/// image's /etc/passwd and /etc/group, as runc/libcontainer do: a numeric uid missing from
/// passwd runs with gid 0 and home "/"; supplementary groups are the groups that list the user
/// by name, plus the primary one. A user or group NAME the files do not know fails with
/// Code::build_failed ("unable to find user app: no matching entries in passwd file").
Result<RunUser> resolve_run_user(std::string_view user, const BaseFileReader& read_file);

/// Reads `path` (absolute) from a stack of unpacked layers in overlay form (top first): the
/// first layer that has it wins, a whiteout (0/0 character device) or an opaque directory above
/// hides what is below. Symlinks are not followed (nullopt). Meant for /etc/passwd and
/// /etc/group; reads at most 4 MiB.
Result<std::optional<std::string>> read_file_from_layers(const std::vector<std::string>& lowers,
                                                         std::string_view path);

/// The step's environment: the image's Env, then the build args visible to the step that Env
/// does not set (they reach the process, never the config), then PATH and HOME when missing.
std::vector<std::string> run_environment(const std::vector<std::string>& image_env,
                                         const dockerfile::Environment& args,
                                         const std::string& home);

/// argv for a RUN or CMD command line: shell form is `shell` + the command text, exec form is
/// the words as they are. A shell-form RUN whose only word is a heredoc runs the heredoc's body;
/// otherwise each heredoc's body and delimiter follow the command text, for the shell to read.
std::vector<std::string> command_argv(const dockerfile::CommandLine& command,
                                      const std::vector<std::string>& shell);

/// History `created_by` of a RUN, as BuildKit writes it: "RUN |2 A=1 B=2 /bin/sh -c make"
/// (the "|N" part only when build args are visible).
std::string run_created_by(const std::vector<std::string>& argv,
                           const dockerfile::Environment& args);

/// Takes the sandbox's mount points (paths relative to the root, as the sandbox recorded them
/// in its stubs file) back out of an overlay upper dir: an empty regular file or an empty
/// directory of that name is removed, deepest first; anything the step wrote there stays.
/// With StubParents::remove_empty, directories that overlay copied up only to hold a stub
/// (empty, not opaque) go too; StubParents::keep leaves them (a vfs root, where they are the
/// image's own).
enum class StubParents { remove_empty, keep };
Result<void> remove_mount_stubs(const std::string& upper_dir, std::string_view stubs_text,
                                StubParents parents = StubParents::remove_empty);

/// Keeps the last lines of a step's output for its error message.
class OutputTail {
public:
  explicit OutputTail(std::size_t lines) : m_limit(lines) {}
  /// Feeds bytes; calls `on_line` for every complete line.
  template <typename OnLine>
  void feed(std::string_view chunk, OnLine&& on_line) {
    for (const char c : chunk) {
      if (c == '\n') {
        on_line(std::string_view(m_partial));
        remember(std::move(m_partial));
        m_partial.clear();
      } else if (m_partial.size() < 4096) {
        m_partial.push_back(c);
      }
    }
  }
  /// Flushes a last line without a newline.
  template <typename OnLine>
  void finish(OnLine&& on_line) {
    if (!m_partial.empty()) {
      on_line(std::string_view(m_partial));
      remember(std::move(m_partial));
      m_partial.clear();
    }
  }
  const std::deque<std::string>& lines() const { return m_lines; }

private:
  void remember(std::string line) {
    m_lines.push_back(std::move(line));
    if (m_lines.size() > m_limit) {
      m_lines.pop_front();
    }
  }
  std::size_t m_limit;
  std::string m_partial;
  std::deque<std::string> m_lines;
};

} // namespace minibuild::build
