// One set of dockerignore-style patterns applied during a top-down walk: the .dockerignore of a
// context, or the --exclude patterns of a COPY.
//
// BuildKit's walker decides each entry with MatchesUsingParentResults, skips an excluded
// directory when no exception can re-include anything below it, and otherwise descends into it,
// sending the directory only when something below it is kept. That gives three verdicts.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/dockerfile/dockerignore.hpp>

#include <string>
#include <string_view>

namespace minibuild::build {

enum class Verdict {
  keep,         ///< not excluded
  skip,         ///< excluded, and nothing below it can come back
  descend_only, ///< an excluded directory that exceptions may re-include entries of
};

/// What a walk carries from a directory to its children, per filter.
struct FilterState {
  dockerfile::IgnoreMatchInfo info;
};

/// A pattern set, or none (everything is kept).
class PathFilter {
public:
  PathFilter() = default;
  explicit PathFilter(const dockerfile::IgnoreMatcher* matcher) : m_matcher(matcher) {}

  bool active() const { return m_matcher != nullptr; }

  /// The verdict for `rel` (relative to where the patterns apply) given its parent's state;
  /// `child` receives the state to pass to rel's children.
  Result<Verdict> decide(std::string_view rel, bool is_dir, const FilterState& parent,
                         FilterState& child) const {
    if (m_matcher == nullptr || rel.empty()) {
      return Verdict::keep;
    }
    MB_TRY_ASSIGN(auto decision, m_matcher->matches_using_parent_results(rel, parent.info));
    child.info = std::move(decision.info);
    if (!decision.excluded) {
      return Verdict::keep;
    }
    if (!is_dir || m_matcher->can_skip_directory(rel)) {
      return Verdict::skip;
    }
    return Verdict::descend_only;
  }

private:
  const dockerfile::IgnoreMatcher* m_matcher = nullptr;
};

/// The top-down decision for one path.
struct PathDecision {
  Verdict verdict = Verdict::keep; ///< for the path itself
  FilterState state;               ///< to pass to its children
};

/// Decides `rel` by walking its components from the top, as a walker reaches it: a skipped
/// parent makes everything below it skipped. `is_dir` is the type of the last component.
inline Result<PathDecision> decide_path(const PathFilter& filter, std::string_view rel,
                                        bool is_dir) {
  PathDecision decision;
  if (!filter.active()) {
    return decision;
  }
  std::string prefix;
  std::size_t start = 0;
  while (start < rel.size()) {
    std::size_t end = rel.find('/', start);
    if (end == std::string_view::npos) {
      end = rel.size();
    }
    if (end > start) {
      if (!prefix.empty()) {
        prefix += '/';
      }
      prefix.append(rel.substr(start, end - start));
      const bool last = end == rel.size();
      FilterState child;
      MB_TRY_ASSIGN(Verdict verdict,
                    filter.decide(prefix, last ? is_dir : true, decision.state, child));
      decision.state = std::move(child);
      decision.verdict = verdict;
      if (verdict == Verdict::skip) {
        return decision; // the walker never enters a skipped directory
      }
    }
    start = end + 1;
  }
  return decision;
}

} // namespace minibuild::build
