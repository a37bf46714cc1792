// .dockerignore, read and applied exactly as Docker (BuildKit) does it.
//
// BuildKit reads the file with moby/patternmatcher's ignorefile.ReadAll, compiles the patterns with
// patternmatcher.New, and fsutil walks the build context with MatchesUsingParentResults, skipping
// an excluded directory when no exception could bring anything below it back. This module is those
// three pieces; it does no I/O (the caller reads the file and walks the tree).
//
// The pattern language, as patternmatcher implements it (and therefore not quite filepath.Match):
//   - Paths are slash-separated and relative to the context root ("src/main.c"); "/x" and "x" in
//     the file mean the same pattern. A pattern matches a path, and with the *_parent_* functions
//     also any of its parent directories, so "docs" excludes "docs/a/b".
//   - `*` is any run of characters except `/`; `?` one character except `/`; `**` any number of
//     directories (`**/x` matches "x" and "a/b/x"; `a/**` matches everything below "a" but not
//     "a").
//   - `[...]` is a character class (`[^...]` negated, ranges `a-z`), `\x` makes x literal.
//     Patternmatcher translates a pattern to a Go regexp and then runs it, so regexp syntax leaks
//     through where it does: `\d`, `\w`, `\s`, `\t`, `\x41`, `[[:alpha:]]`, `\b`, `\Q..\E` mean
//     what they mean to Go's regexp, a `*` or `?` inside `[...]` is translated first (`[*]` is not
//     a literal star), and `^` outside a class anchors. Unicode classes (`\pL`, `\p{Greek}`) are
//     not implemented: create() reports them as Code::unsupported instead of guessing.
//   - A syntax error that filepath.Match detects (`[`, `[]`, `[a-]`, a trailing `\`) fails
//   create().
//     A pattern that passes that check but is not a valid Go regexp (`[z-a]*`, `a\q*`) fails only
//     when it is evaluated, as in Docker, where it fails the build then.
//   - Patterns apply in order and the last one that matches decides: `!pattern` lines are
//     exceptions that re-include what earlier lines excluded.
#pragma once

#include <minibuild/base/error.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::dockerfile {

/// ignorefile.ReadAll: one pattern per line, in order. A UTF-8 byte order mark before the first
/// line is dropped; a line whose first byte is `#` is a comment (an indented `#` is a pattern);
/// surrounding whitespace is trimmed and blank lines are skipped; the text after a leading `!` is
/// trimmed again; the pattern is cleaned as filepath.Clean does (`./a//b/../c` → `a/c`) and a
/// leading `/` removed. Exceptions keep their `!` ("!a/c"); a lone `!` stays "!" (create() rejects
/// it). Lines end at \n, with one \r before it dropped. Fails like Go's bufio.Scanner for a line of
/// 64 KiB or more (Docker cannot read such a file either); the error names the line.
Result<std::vector<std::string>> parse_dockerignore(std::string_view text);

/// One pattern as create() cleaned it.
struct IgnoreRule {
  std::string pattern; ///< cleaned, without the `!`
  bool exception;      ///< a `!` line: matching paths are re-included
};

/// Per pattern, whether it matched a directory: what a walker keeps for each open directory so that
/// its children are decided as BuildKit decides them. A default-constructed value means "no
/// information": the parent directories are then checked by path, as matches_or_parent_matches
/// does.
struct IgnoreMatchInfo {
  std::vector<bool> parent_matched;
};

struct IgnoreDecision {
  bool excluded;
  IgnoreMatchInfo info; ///< pass to the children of this path if it is a directory
};

/// Compiled .dockerignore patterns (patternmatcher.PatternMatcher). Immutable once created; copies
/// share the compiled patterns and every method is const, so one matcher may be used from several
/// threads at once.
class IgnoreMatcher {
public:
  /// patternmatcher.New: trims and cleans each pattern, skips empty ones, and fails
  /// (Code::dockerfile) on a lone "!" or a pattern filepath.Match calls malformed;
  /// Code::unsupported for a Unicode class (see above).
  static Result<IgnoreMatcher> create(const std::vector<std::string>& patterns);
  /// parse_dockerignore + create; errors carry the .dockerignore line as their location.
  static Result<IgnoreMatcher> from_dockerignore(std::string_view text);

  /// MatchesExact: whether `path` itself is excluded, looking at no parent directory.
  Result<bool> matches(std::string_view path) const;
  /// MatchesOrParentMatches: whether `path` is excluded because a pattern matches it or one of its
  /// parent directories; decided by the last such pattern. What Docker uses to open a single path.
  Result<bool> matches_or_parent_matches(std::string_view path) const;
  /// MatchesUsingParentResults: the decision a top-down walk makes for `path`, given the info its
  /// parent directory got (default-constructed for a top-level entry). BuildKit sends the context
  /// this way, and it can differ from matches_or_parent_matches: with `a`, `!a/x`, `a` the walk
  /// keeps "a/x" (the last `a` only counts for children when it matched the parent).
  Result<IgnoreDecision> matches_using_parent_results(std::string_view path,
                                                      const IgnoreMatchInfo& parent) const;

  /// For a directory the walk found excluded: true when the walk may skip its whole subtree
  /// because no exception can re-include anything below it. This is fsutil's rule, which is
  /// conservative: it answers false whenever an exception (minus a trailing "/*" or "/**") holds a
  /// wildcard, or names a path below `excluded_dir`.
  bool can_skip_directory(std::string_view excluded_dir) const;

  /// Whether any pattern is an exception.
  bool has_exceptions() const;
  const std::vector<IgnoreRule>& rules() const;

  struct Compiled; ///< the patterns with their compiled forms (private to dockerignore.cpp)

private:
  explicit IgnoreMatcher(std::shared_ptr<const Compiled> compiled)
      : m_compiled(std::move(compiled)) {}
  std::shared_ptr<const Compiled> m_compiled;
};

} // namespace minibuild::dockerfile
