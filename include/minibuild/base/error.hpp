// The one error type of minibuild, and Result<T>.
//
// Every fallible function in the library returns Result<T> (tl::expected<T, Error>); exceptions
// never cross a module boundary. An Error carries:
//   - a Code, which only cli/ maps to a documented exit code (docs/cli.md);
//   - the errno of the failing system call, if any (0 otherwise);
//   - the root-cause message, written by the lowest level ("open \"/x\": No such file");
//   - a context chain, added on the way up ("build stage 2", "COPY app /app");
//   - for user input (Dockerfile, .dockerignore, CLI values), a SourceRange that names
//     file:line:column so the CLI can show the line and a caret.
// See docs/error-handling.md.
#pragma once

#include <tl/expected.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild {

/// What kind of failure this is; decides the exit code (docs/cli.md). Add new kinds at the end.
enum class Code {
  internal,     ///< a bug in minibuild: an invariant did not hold
  usage,        ///< bad command line: unknown flag, missing value, bad option syntax
  dockerfile,   ///< the Dockerfile (or a build argument feeding it) is invalid
  build_failed, ///< a build step ran and failed (RUN exited non-zero, COPY source missing)
  not_found,    ///< a named thing does not exist: image, tag, file, stage
  io,           ///< a filesystem operation failed
  corrupt,      ///< stored or received content does not match its digest or format
  network,      ///< a registry could not be reached or answered with an error
  auth,         ///< a registry refused our credentials
  sandbox,      ///< the kernel refused a namespace, mount or seccomp step
  unsupported,  ///< valid input that this version of minibuild does not implement yet
  interrupted,  ///< the user stopped the command (SIGINT/SIGTERM)
};

/// Name of a Code as written in logs and in `--format json` error output ("dockerfile").
std::string_view code_name(Code code);

/// A position in a user-supplied text. Lines and columns are 1-based; column 0 means "whole line".
/// end_line >= line; a range that spans one line has end_line == line.
struct SourceRange {
  std::string file;
  int line = 0;
  int column = 0;
  int end_line = 0;

  bool operator==(const SourceRange&) const = default;
};

/// An error with its cause chain. Cheap to move; copied only when a caller keeps it.
class Error {
public:
  Error(Code code, std::string message) : m_code(code), m_message(std::move(message)) {}

  /// An error from a failed system call: `message` names verb and object, errno gives the cause.
  static Error from_errno(int sys_errno, std::string message);

  Code code() const { return m_code; }
  int sys_errno() const { return m_errno; }
  /// The root cause, as the lowest level wrote it.
  const std::string& message() const { return m_message; }
  /// Context added on the way up, outermost first.
  const std::vector<std::string>& context() const { return m_context; }
  const std::optional<SourceRange>& location() const { return m_location; }

  /// Adds an outer context ("pull alpine: " ...). Returns *this so a caller can `return
  /// std::move(err).wrap("...")` or use MB_TRY_CONTEXT.
  Error& wrap(std::string context) &;
  Error&& wrap(std::string context) &&;
  /// Attaches the source location if none is set yet (the innermost location wins).
  Error& at(SourceRange location) &;
  Error&& at(SourceRange location) &&;
  /// Changes the code, for a caller that knows better (an io error reading a Dockerfile is a
  /// not_found for the user).
  Error&& with_code(Code code) &&;
  /// Marks the error with a machine-readable cause, for the callers that decide on it (fall
  /// back to copies when overlayfs is refused, pull when an image is not stored): the module
  /// that raises it declares the tag as a constant next to its interface. Messages are for
  /// people; code never searches them.
  Error&& tagged(std::string_view tag) &&;
  /// Whether tagged(`tag`) was called on this error (wrap() and at() keep the tag).
  bool has_tag(std::string_view tag) const { return !m_tag.empty() && m_tag == tag; }

  /// The full text: "file:line:col: ctx1: ctx2: message" (location first when present).
  std::string what() const;

private:
  Code m_code;
  int m_errno = 0;
  std::string m_message;
  std::string m_tag;
  std::vector<std::string> m_context;
  std::optional<SourceRange> m_location;
};

template <typename T>
using Result = tl::expected<T, Error>;

/// Shorthand for returning an error: `return fail(Code::io, "read ...")`.
inline tl::unexpected<Error> fail(Code code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}
inline tl::unexpected<Error> fail(Error error) {
  return tl::unexpected<Error>(std::move(error));
}
/// An error from errno, e.g. `return fail_errno(errno, "open \"" + path + "\"")`.
inline tl::unexpected<Error> fail_errno(int sys_errno, std::string message) {
  return tl::unexpected<Error>(Error::from_errno(sys_errno, std::move(message)));
}

} // namespace minibuild

// Propagate an error: `MB_TRY(do_thing());` returns the error of a failed Result<T>.
#define MB_TRY(expr)                                                                               \
  do {                                                                                             \
    auto mb_try_result_ = (expr);                                                                  \
    if (!mb_try_result_) {                                                                         \
      return ::tl::unexpected<::minibuild::Error>(std::move(mb_try_result_).error());              \
    }                                                                                              \
  } while (false)

// Propagate an error with a context line: `MB_TRY_CONTEXT(open(p), "read config")`.
#define MB_TRY_CONTEXT(expr, context_text)                                                         \
  do {                                                                                             \
    auto mb_try_result_ = (expr);                                                                  \
    if (!mb_try_result_) {                                                                         \
      return ::tl::unexpected<::minibuild::Error>(                                                 \
          std::move(mb_try_result_).error().wrap(context_text));                                   \
    }                                                                                              \
  } while (false)

#define MB_CONCAT_INNER_(a, b) a##b
#define MB_CONCAT_(a, b) MB_CONCAT_INNER_(a, b)

// Declare a variable from a Result or return its error:
//   MB_TRY_ASSIGN(auto text, read_file(path));
#define MB_TRY_ASSIGN(decl, expr) MB_TRY_ASSIGN_IMPL_(MB_CONCAT_(mb_try_tmp_, __LINE__), decl, expr)
#define MB_TRY_ASSIGN_IMPL_(tmp, decl, expr)                                                       \
  auto tmp = (expr);                                                                               \
  if (!tmp) {                                                                                      \
    return ::tl::unexpected<::minibuild::Error>(std::move(tmp).error());                           \
  }                                                                                                \
  decl = std::move(*tmp)
