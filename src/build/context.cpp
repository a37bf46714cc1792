#include "context_impl.hpp"
#include "fs_ops.hpp"

#include <minibuild/base/file.hpp>
#include <minibuild/base/unique_fd.hpp>

#include <fcntl.h>
#include <sys/stat.h>

namespace minibuild::build {

namespace {

constexpr std::size_t k_max_ignore_file = 16u << 20;

// The context's own .dockerignore is read inside the context root, so a symlinked one cannot
// pull in a file from elsewhere.
Result<std::optional<std::string>> read_context_ignore(const InRoot& root) {
  auto located = root.locate(".dockerignore", FollowFinal::yes);
  if (!located) {
    if (located.error().sys_errno() == ENOENT || located.error().sys_errno() == ENOTDIR) {
      return std::nullopt;
    }
    return fail(std::move(located).error());
  }
  if (!S_ISREG(located->st.st_mode)) {
    return std::nullopt;
  }
  MB_TRY_ASSIGN(UniqueFd fd, root.open_for_reading(*located));
  MB_TRY_ASSIGN(std::string text, read_all(fd.get(), ".dockerignore", k_max_ignore_file));
  return text;
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

} // namespace

Result<bool> BuildContext::Impl::has_kept_descendant(int dirfd, const std::string& rel,
                                                     const FilterState& state) const {
  MB_TRY_ASSIGN(auto names, list_directory(dirfd, rel));
  const PathFilter patterns = filter();
  for (const std::string& name : names) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno, "stat \"" + join_path(rel, name) + "\" in the build context");
    }
    const std::string child_rel = join_path(rel, name);
    FilterState child;
    MB_TRY_ASSIGN(Verdict verdict, patterns.decide(child_rel, S_ISDIR(st.st_mode), state, child));
    if (verdict == Verdict::keep) {
      return true;
    }
    if (verdict == Verdict::descend_only) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        return fail_errno(errno, "open \"" + child_rel + "\" in the build context");
      }
      MB_TRY_ASSIGN(bool kept, has_kept_descendant(sub.get(), child_rel, child));
      if (kept) {
        return true;
      }
    }
  }
  return false;
}

Result<bool> BuildContext::Impl::visible(const Located& entry) const {
  if (!ignore || entry.physical.empty()) {
    return true;
  }
  const bool is_dir = S_ISDIR(entry.st.st_mode);
  MB_TRY_ASSIGN(PathDecision decision, decide(entry.physical, is_dir));
  switch (decision.verdict) {
  case Verdict::keep:
    return true;
  case Verdict::skip:
    return false;
  case Verdict::descend_only:
    break;
  }
  MB_TRY_ASSIGN(UniqueFd dir, root.open_for_reading(entry));
  return has_kept_descendant(dir.get(), entry.physical, decision.state);
}

BuildContext::BuildContext(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
BuildContext::BuildContext(BuildContext&&) noexcept = default;
BuildContext& BuildContext::operator=(BuildContext&&) noexcept = default;
BuildContext::~BuildContext() = default;

Result<BuildContext> BuildContext::open(const std::string& dir, const ContextOptions& options) {
  auto root = InRoot::open(dir, options.resolution);
  if (!root) {
    return fail(std::move(root).error().wrap("open build context"));
  }
  auto impl = std::make_unique<Impl>(Impl{std::move(*root), dir, {}, std::nullopt});

  if (options.ignore == IgnoreFiles::auto_detect) {
    std::optional<std::string> text;
    // BuildKit (dockerui): a Dockerfile-specific ignore file beside the Dockerfile wins.
    if (!options.dockerfile_path.empty() && options.dockerfile_path != "-") {
      const std::string specific = options.dockerfile_path + ".dockerignore";
      if (is_regular_file(specific)) {
        MB_TRY_ASSIGN(text, read_file(specific));
        impl->ignore_file = specific;
      }
    }
    if (!text) {
      MB_TRY_ASSIGN(text, read_context_ignore(impl->root));
      if (text) {
        impl->ignore_file = join_path(dir, ".dockerignore");
      }
    }
    if (text) {
      auto matcher = dockerfile::IgnoreMatcher::from_dockerignore(*text);
      if (!matcher) {
        Error error = std::move(matcher).error();
        if (error.location()) {
          SourceRange location = *error.location();
          location.file = impl->ignore_file;
          // at() keeps the innermost location, so rebuild the error with the file named.
          Error named(error.code(), error.message());
          named.at(location);
          return fail(std::move(named).wrap("read " + impl->ignore_file));
        }
        return fail(std::move(error).wrap("read " + impl->ignore_file));
      }
      impl->ignore = std::move(*matcher);
    }
  }
  return BuildContext(std::move(impl));
}

const std::string& BuildContext::path() const {
  return m_impl->path;
}

const std::string& BuildContext::ignore_file() const {
  return m_impl->ignore_file;
}

const std::optional<dockerfile::IgnoreMatcher>& BuildContext::ignore() const {
  return m_impl->ignore;
}

bool BuildContext::uses_openat2() const {
  return m_impl->root.uses_openat2();
}

Result<bool> BuildContext::is_visible(const std::string& rel) const {
  MB_TRY_ASSIGN(Located located, m_impl->root.locate(rel, FollowFinal::no));
  return m_impl->visible(located);
}

} // namespace minibuild::build
