#include "archive_extract.hpp"
#include "context_impl.hpp"
#include "fs_ops.hpp"
#include "staging.hpp"

#include <minibuild/build/copy.hpp>
#include <minibuild/build/copy_sources.hpp>
#include <minibuild/build/file_mode.hpp>
#include <minibuild/build/path_match.hpp>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild::build {

CopyStep CopyStep::from(const dockerfile::CopyInstruction& copy, std::string workdir) {
  CopyStep step;
  step.kind = CopyKind::copy;
  step.sources = copy.sources;
  step.inline_sources = copy.inline_sources;
  step.dest = copy.dest;
  step.workdir = std::move(workdir);
  step.chown = copy.chown;
  step.chmod = copy.chmod;
  step.link = copy.link;
  step.parents = copy.parents;
  step.excludes = copy.excludes;
  return step;
}

CopyStep CopyStep::from(const dockerfile::AddInstruction& add, std::string workdir) {
  CopyStep step;
  step.kind = CopyKind::add;
  step.sources = add.sources;
  step.inline_sources = add.inline_sources;
  step.dest = add.dest;
  step.workdir = std::move(workdir);
  step.chown = add.chown;
  step.chmod = add.chmod;
  step.checksum = add.checksum;
  step.link = add.link;
  step.unpack = add.unpack;
  step.excludes = add.excludes;
  return step;
}

namespace {

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::vector<std::string> split_components(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    if (end > start) {
      parts.emplace_back(path.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

// Go's path.Join("/", path), without the leading slash: `..` stops at the root, so a source can
// never name anything above the context, and an absolute source is relative to it.
std::string clean_relative(std::string_view path) {
  std::vector<std::string> out;
  for (std::string& part : split_components(path)) {
    if (part == ".") {
      continue;
    }
    if (part == "..") {
      if (!out.empty()) {
        out.pop_back();
      }
      continue;
    }
    out.push_back(std::move(part));
  }
  std::string joined;
  for (const std::string& part : out) {
    joined = join_path(joined, part);
  }
  return joined;
}

std::pair<std::string, std::string> split_parent(const std::string& rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) {
    return {"", rel};
  }
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

bool is_http_url(std::string_view source) {
  return starts_with(source, "http://") || starts_with(source, "https://");
}

// The shapes BuildKit's dfgitutil.ParseGitRef takes for a git remote.
bool is_git_source(std::string_view source) {
  if (starts_with(source, "git://") || starts_with(source, "ssh://")) {
    return true;
  }
  if (starts_with(source, "git@") && source.find(':') != std::string_view::npos) {
    return true;
  }
  if (is_http_url(source)) {
    std::string_view path = source.substr(0, source.find('#'));
    return ends_with(path, ".git");
  }
  return false;
}

bool is_remote(std::string_view source) {
  return is_http_url(source) || is_git_source(source);
}

struct Item {
  std::size_t source_index = 0;
  std::string literal;     ///< cleaned context path as named (before symlinks)
  Located entry;           ///< followed inside the context
  std::string parents_rel; ///< --parents: path below the pivot
  std::string pivot;       ///< --parents: context path of the pivot
  bool archive = false;
};

bool missing(const Error& error) {
  return error.sys_errno() == ENOENT || error.sys_errno() == ENOTDIR;
}

// The readlink(2) loop: a target longer than the buffer is read again with a larger one.
Result<std::string> read_link(int dir, const std::string& name) {
  std::string target(256, '\0');
  while (true) {
    ssize_t n = ::readlinkat(dir, name.c_str(), target.data(), target.size());
    if (n < 0) {
      return fail_errno(errno, "read symlink " + quoted(name) + " in the build context");
    }
    if (static_cast<std::size_t>(n) < target.size()) {
      target.resize(static_cast<std::size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

// The part of a COPY/ADD both stage_copy() and select_copy_sources() run: flag checks, the
// destination, wildcard expansion, .dockerignore and --exclude, and the walk that turns the
// items into entries at their image paths (directories as their contents, --parents, symlinks,
// heredocs). One implementation, so a cache key can never select other files than the copy it
// stands for. The walk decides; the hooks below act: Engine writes each entry to the staging
// tree, SourceWalker records it.
class Selector {
public:
  Selector(const BuildContext::Impl& context, const CopyStep& step, const BaseImage& base)
      : m_ctx(context), m_step(step), m_base(base),
        m_verb(step.kind == CopyKind::copy ? "COPY" : "ADD") {}
  virtual ~Selector() = default;
  Selector(const Selector&) = delete;
  Selector& operator=(const Selector&) = delete;

protected:
  enum class Sniff { archives, none };

  /// How a directory copied from a source directory comes into the destination.
  enum class DirRole {
    content, ///< found in a directory walk: takes the source's metadata even where it exists
    named,   ///< a directory source copied under its own name: an existing one keeps its own
    parent,  ///< --parents: one between the pivot and the item; an existing one keeps its own
  };

  /// The checks that come before --chown is resolved (their order is the error order).
  Result<void> check_flags();
  /// Selects the items (select_items) and walks them, then the heredocs, calling the hooks
  /// below for every entry in the order the copy writes them.
  Result<void> walk(Sniff sniff);

  // The hooks. Descriptors of the destination are those destination() and enter_dir() return;
  // a hook that writes nothing returns an empty UniqueFd, and receives -1 for them.

  /// A new source begins (hard links are kept within one source, as BuildKit's copier runs
  /// once per source).
  virtual void begin_source() = 0;
  /// ADD: a local archive to extract into the destination (only with Sniff::archives).
  virtual Result<void> unpack(const Item& item) = 0;
  /// The destination directory at staging-relative `rel`, missing parents implied.
  virtual Result<UniqueFd> destination(const std::string& rel) = 0;
  /// A non-directory `src_name` in `src_dir` (context path `physical`, lstat `st`), to become
  /// `dst_name` in `dst_dir` (staging-relative `rel`).
  virtual Result<void> leaf(int src_dir, const std::string& src_name, const std::string& physical,
                            const struct stat& st, int dst_dir, const std::string& dst_name,
                            const std::string& rel) = 0;
  /// The directory `name` in `dst_parent` (`rel`) for a source directory with lstat `st`;
  /// `created` says whether it is new. take_dir() follows for a new one and for every
  /// DirRole::content one.
  virtual Result<UniqueFd> enter_dir(int dst_parent, const std::string& name,
                                     const std::string& rel, const struct stat& st, DirRole role,
                                     bool& created) = 0;
  /// What the directory enter_dir() gave takes from its source, `src_dir` (open for reading).
  virtual Result<void> take_dir(int src_dir, const std::string& physical, const struct stat& st,
                                int dst_parent, const std::string& name,
                                const std::string& rel) = 0;
  /// A new DirRole::content directory entered only because exclusion exceptions might have kept
  /// something below it, and nothing was.
  virtual Result<void> drop_dir(int dst_parent, const std::string& name,
                                const std::string& rel) = 0;
  /// A heredoc source (its name checked), to become `name` in `dst_parent` (`rel`).
  virtual Result<void> inline_file(const dockerfile::InlineSource& source, int dst_parent,
                                   const std::string& name, const std::string& rel) = 0;

  std::uint32_t mode_for(const struct stat& st) const {
    const bool is_dir = S_ISDIR(st.st_mode);
    return m_chmod ? m_chmod->apply(st.st_mode & 07777, is_dir) : (st.st_mode & 07777);
  }
  /// The mode of a heredoc: BuildKit writes it with llb.Mkfile(0644), and --chmod then applies
  /// as to any file.
  std::uint32_t inline_mode() const { return m_chmod ? m_chmod->apply(0644, false) : 0644; }
  bool base_is_directory(const std::string& path) const {
    return !m_step.link && m_base.is_directory && m_base.is_directory(path);
  }

  const BuildContext::Impl& m_ctx;
  const CopyStep& m_step;
  const BaseImage& m_base;
  std::string m_dir_rel;    ///< the destination as a directory, staging-relative
  bool m_base_known = true; ///< false: m_base is a stand-in (select_copy_sources)

private:
  /// --exclude, the destination and the items; fails as stage_copy() fails for a missing or
  /// empty source. `sniff` decides whether ADD opens regular files to detect archives.
  Result<std::vector<Item>> select_items(Sniff sniff);
  /// The per-entry decision of a directory walk, by .dockerignore and --exclude together.
  struct ChildDecision {
    bool skip = false;
    bool tentative = false; ///< kept only when something below it is
    FilterState ignore_child;
    FilterState exclude_child;
  };
  Result<ChildDecision> decide_child(const std::string& child_physical,
                                     const std::string& child_exclude, bool is_dir,
                                     const FilterState& ignore_state,
                                     const FilterState& exclude_state) const;

  Result<void> validate_sources() const;
  Result<std::vector<Item>> expand(std::size_t index);
  Result<std::vector<std::string>> expand_wildcards(const std::string& rel) const;
  Result<void> match_below(const std::string& pivot, const std::vector<std::string>& pattern,
                           std::size_t i, const std::string& rel,
                           std::vector<std::string>& out) const;
  Result<std::vector<Item>> expand_parents(std::size_t index);
  Result<std::vector<std::string>> list(const std::string& literal) const;
  Result<bool> keep_item(const Item& item) const;

  Result<void> walk_item(const Item& item);
  /// The entries below the source directory `src_dir`, into `dst_dir` (`dst_rel`); whether any
  /// was kept.
  Result<bool> walk_contents(int src_dir, const std::string& src_physical,
                             const FilterState& ignore_state, int dst_dir,
                             const std::string& dst_rel, const std::string& exclude_rel,
                             const FilterState& exclude_state);
  Result<void> walk_inline(const dockerfile::InlineSource& source);

  std::string resolve_in_base(const std::string& path) const {
    if (m_step.link || !m_base.resolve) {
      return path;
    }
    std::string resolved = "/" + clean_relative(m_base.resolve(path));
    return resolved;
  }

  std::string m_verb;
  std::optional<ModeChange> m_chmod;
  std::optional<dockerfile::IgnoreMatcher> m_excludes;

  bool m_dest_is_dir = false;
  std::string m_file_rel; ///< the destination as a file, staging-relative
  bool m_dest_dir_syntax = false;
  bool m_dest_in_base = false;
};

class Engine final : public Selector {
public:
  Engine(const BuildContext::Impl& context, const CopyStep& step, const BaseImage& base,
         StagingTree staging)
      : Selector(context, step, base), m_staging(std::move(staging)) {}

  Result<StagedCopy> run();

private:
  void begin_source() override { m_links.clear(); }
  Result<void> unpack(const Item& item) override;
  Result<UniqueFd> destination(const std::string& rel) override;
  Result<void> leaf(int src_dir, const std::string& src_name, const std::string& physical,
                    const struct stat& st, int dst_dir, const std::string& dst_name,
                    const std::string& rel) override;
  Result<UniqueFd> enter_dir(int dst_parent, const std::string& name, const std::string& rel,
                             const struct stat& st, DirRole role, bool& created) override;
  Result<void> take_dir(int src_dir, const std::string& physical, const struct stat& st,
                        int dst_parent, const std::string& name, const std::string& rel) override;
  Result<void> drop_dir(int dst_parent, const std::string& name, const std::string& rel) override;
  Result<void> inline_file(const dockerfile::InlineSource& source, int dst_parent,
                           const std::string& name, const std::string& rel) override;

  StagingTree m_staging;
  StagedCopy m_result;
  std::map<std::string, Owner> m_owner_exceptions;
  // Hard links are kept within one source, like BuildKit's copier (one per source).
  std::map<std::pair<dev_t, ino_t>, std::string> m_links;
  XattrRefusals m_xattrs_refused;
};

Result<void> Selector::validate_sources() const {
  if (!m_step.checksum.empty()) {
    // BuildKit's dispatchCopy checks, in its order and words.
    if (m_step.kind == CopyKind::copy) {
      return fail(Code::dockerfile, "checksum can't be specified for COPY");
    }
    if (m_step.sources.size() != 1) {
      return fail(Code::dockerfile, "checksum can't be specified for multiple sources");
    }
    if (!is_remote(m_step.sources[0])) {
      return fail(Code::dockerfile, "checksum requires HTTP(S) or Git sources");
    }
  }
  for (const std::string& source : m_step.sources) {
    if (m_step.kind == CopyKind::copy) {
      if (is_git_source(source)) {
        return fail(Code::dockerfile, "source can't be a git ref for COPY: " + quoted(source));
      }
      if (is_http_url(source)) {
        return fail(Code::dockerfile, "source can't be a URL for COPY: " + quoted(source));
      }
    } else if (is_remote(source)) {
      return fail(Code::unsupported,
                  std::string(is_git_source(source) ? "git" : "URL") + " source " + quoted(source) +
                      ": ADD from the network is not supported yet (it comes with minibuild's "
                      "HTTP client); download it in a previous stage or into the context");
    }
  }
  return {};
}

Result<std::vector<std::string>> Selector::list(const std::string& literal) const {
  auto located = m_ctx.root.locate(literal, FollowFinal::yes);
  if (!located) {
    if (missing(located.error())) {
      return std::vector<std::string>{};
    }
    return fail(std::move(located).error());
  }
  if (!S_ISDIR(located->st.st_mode)) {
    return std::vector<std::string>{};
  }
  MB_TRY_ASSIGN(UniqueFd dir, m_ctx.root.open_for_reading(*located));
  return list_directory(dir.get(), literal);
}

// fsutil's ResolveWildcards, one component at a time: the literal prefix is resolved, each
// wildcard component is matched against a directory listing in byte order (Go's Walk order).
Result<std::vector<std::string>> Selector::expand_wildcards(const std::string& rel) const {
  const auto parts = split_components(rel);
  std::vector<std::string> candidates{""};
  for (const std::string& part : parts) {
    std::vector<std::string> next;
    for (const std::string& candidate : candidates) {
      if (!has_wildcards(part)) {
        next.push_back(join_path(candidate, part));
        continue;
      }
      MB_TRY_ASSIGN(auto names, list(candidate));
      for (const std::string& name : names) {
        MB_TRY_ASSIGN(bool matched, path_match(part, name));
        if (matched) {
          next.push_back(join_path(candidate, name));
        }
      }
    }
    candidates = std::move(next);
  }
  return candidates;
}

Result<bool> Selector::keep_item(const Item& item) const {
  // .dockerignore: the target as the context walker saw it, and the path as written (an
  // excluded symlink does not exist in the transferred context either).
  MB_TRY_ASSIGN(bool visible, m_ctx.visible(item.entry));
  if (!visible) {
    return false;
  }
  if (item.literal != item.entry.physical && !item.literal.empty()) {
    MB_TRY_ASSIGN(PathDecision decision, m_ctx.decide(item.literal, false));
    if (decision.verdict == Verdict::skip) {
      return false;
    }
  }
  return true;
}

Result<std::vector<Item>> Selector::expand(std::size_t index) {
  if (m_step.parents) {
    return expand_parents(index);
  }
  const std::string& source = m_step.sources[index];
  const std::string rel = clean_relative(source);
  std::vector<Item> items;
  if (!has_wildcards(rel)) {
    auto located = m_ctx.root.locate(rel, FollowFinal::yes);
    if (!located) {
      if (missing(located.error())) {
        return fail(Error(Code::build_failed, quoted(source) + " not found in the build context")
                        .tagged(k_source_not_found));
      }
      return fail(std::move(located).error());
    }
    Item item{index, rel, std::move(*located), {}, {}};
    MB_TRY_ASSIGN(bool keep, keep_item(item));
    if (!keep) {
      return fail(Error(Code::build_failed, quoted(source) +
                                                " not found in the build context: it is "
                                                "excluded by " +
                                                quoted(m_ctx.ignore_file))
                      .tagged(k_source_not_found));
    }
    items.push_back(std::move(item));
    return items;
  }
  MB_TRY_ASSIGN(auto matches, expand_wildcards(rel));
  for (std::string& literal : matches) {
    auto located = m_ctx.root.locate(literal, FollowFinal::yes);
    if (!located) {
      if (missing(located.error())) {
        continue; // a dangling symlink, or a name below a file
      }
      return fail(std::move(located).error());
    }
    Item item{index, std::move(literal), std::move(*located), {}, {}};
    MB_TRY_ASSIGN(bool keep, keep_item(item));
    if (keep) {
      items.push_back(std::move(item));
    }
  }
  return items;
}

// --parents patterns: wildcards per component as above, and `**` for any number of
// directories, as BuildKit's include patterns allow. `**` never descends through a symlink, so
// a link loop cannot make it run forever.
Result<void> Selector::match_below(const std::string& pivot,
                                   const std::vector<std::string>& pattern, std::size_t i,
                                   const std::string& rel, std::vector<std::string>& out) const {
  if (i == pattern.size()) {
    out.push_back(rel);
    return {};
  }
  const std::string& part = pattern[i];
  if (part == "**") {
    MB_TRY(match_below(pivot, pattern, i + 1, rel, out));
    auto located = m_ctx.root.locate(join_path(pivot, rel), FollowFinal::yes);
    if (!located || !S_ISDIR(located->st.st_mode)) {
      return {};
    }
    MB_TRY_ASSIGN(UniqueFd dir, m_ctx.root.open_for_reading(*located));
    MB_TRY_ASSIGN(auto names, list_directory(dir.get(), join_path(pivot, rel)));
    for (const std::string& name : names) {
      struct stat st {};
      if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISDIR(st.st_mode)) {
        MB_TRY(match_below(pivot, pattern, i, join_path(rel, name), out));
      }
    }
    return {};
  }
  if (!has_wildcards(part)) {
    return match_below(pivot, pattern, i + 1, join_path(rel, part), out);
  }
  MB_TRY_ASSIGN(auto names, list(join_path(pivot, rel)));
  for (const std::string& name : names) {
    MB_TRY_ASSIGN(bool matched, path_match(part, name));
    if (matched) {
      MB_TRY(match_below(pivot, pattern, i + 1, join_path(rel, name), out));
    }
  }
  return {};
}

Result<std::vector<Item>> Selector::expand_parents(std::size_t index) {
  const std::string& source = m_step.sources[index];
  // An optional pivot: only what follows "/./" keeps its parents (rsync --relative).
  const auto pivot_at = source.find("/./");
  const std::string pivot_text = pivot_at == std::string::npos ? "" : source.substr(0, pivot_at);
  const std::string pattern_text =
      pivot_at == std::string::npos ? source : source.substr(pivot_at + 3);
  const std::string pivot_rel = clean_relative(pivot_text);
  const std::string pattern_rel = clean_relative(pattern_text);
  const bool required = !has_wildcards(pivot_rel) && !has_wildcards(pattern_rel);
  const auto pattern = split_components(pattern_rel);

  std::vector<std::string> pivots{pivot_rel};
  if (has_wildcards(pivot_rel)) {
    MB_TRY_ASSIGN(pivots, expand_wildcards(pivot_rel));
  }
  std::vector<Item> items;
  std::set<std::string> seen;
  for (const std::string& pivot : pivots) {
    std::vector<std::string> matches;
    MB_TRY(match_below(pivot, pattern, 0, "", matches));
    std::vector<std::string> taken_dirs;
    for (std::string& rel : matches) {
      const std::string literal = join_path(pivot, rel);
      // `**` finds a directory and also what is below it: the directory already holds it.
      const bool covered = std::any_of(taken_dirs.begin(), taken_dirs.end(), [&](const auto& d) {
        return d.empty() || rel == d || starts_with(rel, d + "/");
      });
      if (covered || !seen.insert(literal).second) {
        continue;
      }
      auto located = m_ctx.root.locate(literal, FollowFinal::yes);
      if (!located) {
        if (missing(located.error())) {
          continue;
        }
        return fail(std::move(located).error());
      }
      if (S_ISDIR(located->st.st_mode)) {
        taken_dirs.push_back(rel);
      }
      Item item{index, literal, std::move(*located), rel, pivot};
      MB_TRY_ASSIGN(bool keep, keep_item(item));
      if (keep) {
        items.push_back(std::move(item));
      }
    }
  }
  if (required && items.empty()) {
    return fail(Error(Code::build_failed, quoted(source) + " not found in the build context")
                    .tagged(k_source_not_found));
  }
  return items;
}

Result<UniqueFd> Engine::destination(const std::string& rel) {
  return m_staging.ensure_implied(
      rel, [this](const std::string& path) { return base_is_directory(path); });
}

Result<void> Engine::leaf(int src_dir, const std::string& src_name, const std::string& /*physical*/,
                          const struct stat& st, int dst_dir, const std::string& dst_name,
                          const std::string& rel) {
  MB_TRY(m_staging.clear_for_file(dst_dir, rel, dst_name));
  m_owner_exceptions.erase("/" + rel); // an archive entry this step replaces
  const struct timespec times[2] = {st.st_mtim, st.st_mtim};
  const std::string where = "/" + rel;
  switch (st.st_mode & S_IFMT) {
  case S_IFREG: {
    if (st.st_nlink > 1) {
      auto link = m_links.find({st.st_dev, st.st_ino});
      if (link != m_links.end()) {
        auto [parent_rel, name] = split_parent(link->second);
        auto parent = m_staging.open_existing(parent_rel);
        if (parent && ::linkat(parent->get(), name.c_str(), dst_dir, dst_name.c_str(), 0) == 0) {
          ++m_result.files;
          return {};
        }
        // The first copy was replaced since; copy the data again.
      }
    }
    UniqueFd in(::openat(src_dir, src_name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
    if (!in) {
      return fail_errno(errno, "open " + quoted(src_name) + " in the build context");
    }
    struct stat opened {};
    if (::fstat(in.get(), &opened) != 0 || opened.st_ino != st.st_ino ||
        opened.st_dev != st.st_dev) {
      return fail(Code::io, "read " + quoted(src_name) +
                                " in the build context: the file changed while it was copied");
    }
    UniqueFd out(::openat(dst_dir, dst_name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) {
      return fail_errno(errno, "create " + quoted(where));
    }
    MB_TRY_ASSIGN(std::uint64_t bytes, copy_file_data(in.get(), out.get(), src_name));
    if (::fchmod(out.get(), mode_for(st)) != 0 || ::futimens(out.get(), times) != 0) {
      return fail_errno(errno, "set the metadata of " + quoted(where));
    }
    // After the data: a write clears security.capability. The engine never chowns (the layer
    // writer applies owners), so nothing later clears it again.
    MB_TRY(copy_xattrs(in.get(), out.get(), where, m_xattrs_refused));
    m_result.bytes += bytes;
    ++m_result.files;
    if (st.st_nlink > 1) {
      m_links[{st.st_dev, st.st_ino}] = rel;
    }
    return {};
  }
  case S_IFLNK: {
    MB_TRY_ASSIGN(std::string target, read_link(src_dir, src_name));
    if (::symlinkat(target.c_str(), dst_dir, dst_name.c_str()) != 0) {
      return fail_errno(errno, "create symlink " + quoted(where));
    }
    if (::utimensat(dst_dir, dst_name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno, "set the mtime of " + quoted(where));
    }
    ++m_result.symlinks;
    return {};
  }
  case S_IFIFO:
    if (::mkfifoat(dst_dir, dst_name.c_str(), 0600) != 0) {
      return fail_errno(errno, "create fifo " + quoted(where));
    }
    break;
  case S_IFCHR:
  case S_IFBLK:
    if (::mknodat(dst_dir, dst_name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
      if (errno == EPERM) {
        return fail(Code::unsupported, "copy device node " + quoted(src_name) +
                                           ": creating device nodes needs CAP_MKNOD");
      }
      return fail_errno(errno, "create device node " + quoted(where));
    }
    break;
  default:
    // Sockets cannot be stored in a tar; BuildKit fails, minibuild leaves them out and says so.
    m_result.warnings.push_back("left out " + quoted(where) +
                                ": sockets cannot be stored in a "
                                "layer");
    return {};
  }
  if (::fchmodat(dst_dir, dst_name.c_str(), mode_for(st), 0) != 0 ||
      ::utimensat(dst_dir, dst_name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail_errno(errno, "set the metadata of " + quoted(where));
  }
  ++m_result.files;
  return {};
}

// A directory copied from a source directory: a new one takes the source's mode and mtime, as
// fsutil's copyDirectory does; one found in a directory walk takes them even where the tree
// already has it.
Result<UniqueFd> Engine::enter_dir(int dst_parent, const std::string& name, const std::string& rel,
                                   const struct stat& st, DirRole role, bool& created) {
  return m_staging.copied_dir(dst_parent, rel, name, DirMeta{mode_for(st), st.st_mtim},
                              role == DirRole::content, created);
}

// A directory that takes its metadata from a source directory takes its xattrs too. The staging
// descriptors are O_PATH, which fsetxattr refuses, so the new directory is opened for reading.
Result<void> Engine::take_dir(int src_dir, const std::string& /*physical*/,
                              const struct stat& /*st*/, int dst_parent, const std::string& name,
                              const std::string& rel) {
  UniqueFd dst(::openat(dst_parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dst) {
    return fail_errno(errno, "open directory " + quoted("/" + rel));
  }
  return copy_xattrs(src_dir, dst.get(), "/" + rel, m_xattrs_refused);
}

Result<void> Engine::drop_dir(int dst_parent, const std::string& name, const std::string& rel) {
  return m_staging.remove_empty_dir(dst_parent, rel, name);
}

Result<void> Engine::unpack(const Item& item) {
  MB_TRY(destination(m_dir_rel));
  MB_TRY_ASSIGN(UniqueFd in, m_ctx.root.open_for_reading(item.entry));
  const std::string dest_path =
      m_dir_rel.empty() ? m_staging.path() : m_staging.path() + "/" + m_dir_rel;
  std::optional<Owner> override_owner;
  if (!m_step.chown.empty()) {
    override_owner = m_result.owner;
  }
  MB_TRY_ASSIGN(
      ExtractResult extracted,
      extract_archive(in.get(), dest_path, item.literal, override_owner,
                      m_ctx.root.uses_openat2() ? Resolution::auto_detect : Resolution::fallback));
  m_result.files += extracted.files;
  m_result.directories += extracted.directories;
  m_result.symlinks += extracted.symlinks;
  m_result.bytes += extracted.bytes;
  m_xattrs_refused.merge(extracted.xattrs_refused);
  for (auto& [physical, owner] : extracted.owners) {
    m_owner_exceptions["/" + join_path(m_dir_rel, physical)] = owner;
  }
  return {};
}

Result<void> Engine::inline_file(const dockerfile::InlineSource& source, int dst_parent,
                                 const std::string& name, const std::string& rel) {
  MB_TRY(m_staging.clear_for_file(dst_parent, rel, name));
  m_owner_exceptions.erase("/" + rel);
  UniqueFd out(::openat(dst_parent, name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out) {
    return fail_errno(errno, "create " + quoted("/" + rel));
  }
  std::size_t written = 0;
  while (written < source.content.size()) {
    ssize_t n =
        ::write(out.get(), source.content.data() + written, source.content.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno(errno, "write " + quoted("/" + rel));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(out.get(), inline_mode()) != 0) {
    return fail_errno(errno, "set the mode of " + quoted("/" + rel));
  }
  m_result.bytes += source.content.size();
  ++m_result.files;
  return {};
}

Result<void> Selector::check_flags() {
  MB_TRY(validate_sources());
  if (!m_step.chmod.empty()) {
    MB_TRY_ASSIGN(m_chmod, ModeChange::parse(m_step.chmod));
  }
  return {};
}

Result<std::vector<Item>> Selector::select_items(Sniff sniff) {
  if (!m_step.excludes.empty()) {
    auto matcher = dockerfile::IgnoreMatcher::create(m_step.excludes);
    if (!matcher) {
      return fail(std::move(matcher).error().wrap("--exclude"));
    }
    m_excludes = std::move(*matcher);
  }

  // The destination, as BuildKit's pathRelativeToWorkingDir and NormalizePath see it.
  const std::string& dest = m_step.dest;
  m_dest_dir_syntax = dest.empty() || dest == "." || ends_with(dest, "/") || ends_with(dest, "/.");
  const std::string dest_abs =
      "/" +
      clean_relative(!dest.empty() && dest.front() == '/' ? dest : m_step.workdir + "/" + dest);
  m_dest_dir_syntax = m_dest_dir_syntax || dest_abs == "/";
  m_dest_in_base = base_is_directory(dest_abs);
  m_dir_rel = clean_relative(resolve_in_base(dest_abs));
  {
    auto [up, last] = split_parent(clean_relative(dest_abs));
    m_file_rel = join_path(clean_relative(resolve_in_base("/" + up)), last);
  }

  std::vector<Item> items;
  std::vector<std::string> empty_wildcards;
  for (std::size_t i = 0; i < m_step.sources.size(); ++i) {
    auto expanded = expand(i);
    if (!expanded) {
      return fail(std::move(expanded).error());
    }
    if (expanded->empty()) {
      empty_wildcards.push_back(m_step.sources[i]);
    }
    for (Item& item : *expanded) {
      // --exclude also applies to what a source names directly (`COPY --exclude=*.txt hom*`):
      // a file by its name, anything under --parents by its path below the pivot. A directory
      // source is filtered entry by entry.
      const bool is_dir = S_ISDIR(item.entry.st.st_mode);
      const std::string exclude_rel = m_step.parents ? item.parents_rel
                                      : is_dir       ? std::string()
                                                     : split_parent(item.literal).second;
      if (m_excludes && !exclude_rel.empty()) {
        MB_TRY_ASSIGN(PathDecision decision,
                      decide_path(PathFilter(&*m_excludes), exclude_rel, is_dir));
        if (decision.verdict == Verdict::skip || (!is_dir && decision.verdict != Verdict::keep)) {
          continue;
        }
      }
      if (sniff == Sniff::archives && m_step.kind == CopyKind::add &&
          m_step.unpack.value_or(true) && S_ISREG(item.entry.st.st_mode)) {
        MB_TRY_ASSIGN(UniqueFd fd, m_ctx.root.open_for_reading(item.entry));
        MB_TRY_ASSIGN(item.archive, is_tar_archive(fd.get()));
      }
      items.push_back(std::move(item));
    }
  }

  const std::size_t total = items.size() + m_step.inline_sources.size();
  if (total == 0) {
    std::string detail;
    for (const std::string& source : empty_wildcards) {
      detail += (detail.empty() ? "" : ", ") + quoted(source);
    }
    return fail(Code::build_failed, "no source files were specified (" + detail +
                                        " matched nothing in the build context)");
  }
  // Whether the destination is a directory of the base decides this; without a base (a cache
  // key) the copy itself reports it.
  if (m_base_known && total > 1 && !m_dest_dir_syntax && !m_dest_in_base && !m_step.parents) {
    return fail(Code::build_failed,
                "When using " + m_verb +
                    " with more than one source file, the destination must be a directory and "
                    "end with a /");
  }
  m_dest_is_dir = m_dest_dir_syntax || m_dest_in_base || total > 1 || m_step.parents;
  return items;
}

Result<Selector::ChildDecision> Selector::decide_child(const std::string& child_physical,
                                                       const std::string& child_exclude,
                                                       bool is_dir, const FilterState& ignore_state,
                                                       const FilterState& exclude_state) const {
  const PathFilter ignore = m_ctx.filter();
  const PathFilter excludes = m_excludes ? PathFilter(&*m_excludes) : PathFilter();
  ChildDecision decision;
  MB_TRY_ASSIGN(Verdict by_ignore,
                ignore.decide(child_physical, is_dir, ignore_state, decision.ignore_child));
  MB_TRY_ASSIGN(Verdict by_exclude,
                excludes.decide(child_exclude, is_dir, exclude_state, decision.exclude_child));
  decision.skip = by_ignore == Verdict::skip || by_exclude == Verdict::skip;
  decision.tentative = by_ignore == Verdict::descend_only || by_exclude == Verdict::descend_only;
  return decision;
}

Result<void> Selector::walk(Sniff sniff) {
  MB_TRY_ASSIGN(std::vector<Item> items, select_items(sniff));
  std::size_t current_source = 0;
  for (const Item& item : items) {
    if (item.source_index != current_source) {
      begin_source();
      current_source = item.source_index;
    }
    if (item.archive) {
      MB_TRY(unpack(item));
    } else {
      MB_TRY(walk_item(item));
    }
  }
  for (const auto& source : m_step.inline_sources) {
    MB_TRY(walk_inline(source));
  }
  return {};
}

Result<bool> Selector::walk_contents(int src_dir, const std::string& src_physical,
                                     const FilterState& ignore_state, int dst_dir,
                                     const std::string& dst_rel, const std::string& exclude_rel,
                                     const FilterState& exclude_state) {
  MB_TRY_ASSIGN(auto names, list_directory(src_dir, src_physical));
  bool copied_any = false;
  for (const std::string& name : names) {
    struct stat st {};
    if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno,
                        "stat " + quoted(join_path(src_physical, name)) + " in the build context");
    }
    const bool is_dir = S_ISDIR(st.st_mode);
    const std::string child_physical = join_path(src_physical, name);
    const std::string child_exclude = join_path(exclude_rel, name);
    MB_TRY_ASSIGN(ChildDecision decided,
                  decide_child(child_physical, child_exclude, is_dir, ignore_state, exclude_state));
    if (decided.skip) {
      continue;
    }
    const std::string child_rel = join_path(dst_rel, name);
    if (!is_dir) {
      MB_TRY(leaf(src_dir, name, child_physical, st, dst_dir, name, child_rel));
      copied_any = true;
      continue;
    }
    UniqueFd sub(::openat(src_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) {
      return fail_errno(errno, "open " + quoted(child_physical) + " in the build context");
    }
    bool created = false;
    MB_TRY_ASSIGN(UniqueFd target,
                  enter_dir(dst_dir, name, child_rel, st, DirRole::content, created));
    MB_TRY(take_dir(sub.get(), child_physical, st, dst_dir, name, child_rel));
    MB_TRY_ASSIGN(bool below,
                  walk_contents(sub.get(), child_physical, decided.ignore_child, target.get(),
                                child_rel, child_exclude, decided.exclude_child));
    if (decided.tentative && !below) {
      if (created) {
        MB_TRY(drop_dir(dst_dir, name, child_rel));
      }
      continue;
    }
    copied_any = true;
  }
  return copied_any;
}

Result<void> Selector::walk_item(const Item& item) {
  const Located& entry = item.entry;
  const bool is_dir = S_ISDIR(entry.st.st_mode);

  // The directory that receives the item, and the item's own name in it.
  UniqueFd parent;
  std::string parent_rel;
  std::string name;
  if (m_step.parents) {
    MB_TRY_ASSIGN(parent, destination(m_dir_rel));
    parent_rel = m_dir_rel;
    // Parents below the pivot are copied from the context with their own metadata.
    const auto parts = split_components(item.parents_rel);
    std::string so_far;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      so_far = join_path(so_far, parts[i]);
      MB_TRY_ASSIGN(Located source_dir,
                    m_ctx.root.locate(join_path(item.pivot, so_far), FollowFinal::yes));
      const std::string rel = join_path(m_dir_rel, so_far);
      bool created = false;
      UniqueFd up = std::move(parent);
      MB_TRY_ASSIGN(parent,
                    enter_dir(up.get(), parts[i], rel, source_dir.st, DirRole::parent, created));
      if (created) {
        MB_TRY_ASSIGN(UniqueFd source, m_ctx.root.open_for_reading(source_dir));
        MB_TRY(take_dir(source.get(), source_dir.physical, source_dir.st, up.get(), parts[i], rel));
      }
      parent_rel = rel;
    }
    name = parts.empty() ? std::string() : parts.back();
  } else if (is_dir) {
    // Contents go into the destination itself.
    if (m_dir_rel.empty() || m_dest_dir_syntax || m_dest_in_base) {
      MB_TRY_ASSIGN(UniqueFd target, destination(m_dir_rel));
      MB_TRY_ASSIGN(UniqueFd source, m_ctx.root.open_for_reading(entry));
      MB_TRY_ASSIGN(PathDecision decision, m_ctx.decide(entry.physical, true));
      MB_TRY(walk_contents(source.get(), entry.physical, decision.state, target.get(), m_dir_rel,
                           "", FilterState{}));
      return {};
    }
    std::tie(parent_rel, name) = split_parent(m_dir_rel);
    MB_TRY_ASSIGN(parent, destination(parent_rel));
  } else if (m_dest_is_dir) {
    MB_TRY_ASSIGN(parent, destination(m_dir_rel));
    parent_rel = m_dir_rel;
    name = split_parent(item.literal).second;
  } else {
    std::tie(parent_rel, name) = split_parent(m_file_rel);
    MB_TRY_ASSIGN(parent, destination(parent_rel));
  }

  const std::string rel = join_path(parent_rel, name);
  if (!is_dir) {
    return leaf(entry.parent.get(), entry.name, entry.physical, entry.st, parent.get(), name, rel);
  }
  // A directory copied under a name of its own (no trailing slash, or --parents); without one
  // (--parents naming the pivot itself) its contents go into the destination.
  bool created = false;
  UniqueFd target;
  if (name.empty()) {
    MB_TRY_ASSIGN(target, destination(parent_rel));
  } else {
    MB_TRY_ASSIGN(target, enter_dir(parent.get(), name, rel, entry.st, DirRole::named, created));
  }
  MB_TRY_ASSIGN(UniqueFd source, m_ctx.root.open_for_reading(entry));
  if (created) {
    MB_TRY(take_dir(source.get(), entry.physical, entry.st, parent.get(), name, rel));
  }
  MB_TRY_ASSIGN(PathDecision decision, m_ctx.decide(entry.physical, true));
  FilterState exclude_state;
  if (m_step.parents && m_excludes) {
    MB_TRY_ASSIGN(PathDecision excluded,
                  decide_path(PathFilter(&*m_excludes), item.parents_rel, true));
    exclude_state = excluded.state;
  }
  MB_TRY(walk_contents(source.get(), entry.physical, decision.state, target.get(), rel,
                       m_step.parents ? item.parents_rel : "", exclude_state));
  return {};
}

Result<void> Selector::walk_inline(const dockerfile::InlineSource& source) {
  if (source.name.empty() || source.name.find('/') != std::string::npos || source.name == "." ||
      source.name == "..") {
    return fail(Code::dockerfile,
                "heredoc name " + quoted(source.name) + " cannot be used as a file name");
  }
  UniqueFd parent;
  std::string rel;
  std::string name;
  if (m_dest_is_dir) {
    MB_TRY_ASSIGN(parent, destination(m_dir_rel));
    name = source.name;
    rel = join_path(m_dir_rel, name);
  } else {
    auto [up, last] = split_parent(m_file_rel);
    MB_TRY_ASSIGN(parent, destination(up));
    name = last;
    rel = m_file_rel;
  }
  return inline_file(source, parent.get(), name, rel);
}

Result<StagedCopy> Engine::run() {
  MB_TRY(check_flags());
  MB_TRY_ASSIGN(m_result.owner, resolve_owner(m_step.chown, m_base.read_file));
  m_result.link = m_step.link;
  MB_TRY(walk(Sniff::archives));
  MB_TRY(m_staging.finish());
  if (m_xattrs_refused.count > 0) {
    m_result.warnings.push_back(m_xattrs_refused.warning());
  }

  m_result.directories += m_staging.directories_created();
  for (const std::string& rel : m_staging.base_dirs()) {
    m_result.base_directories.push_back("/" + rel);
  }
  for (const auto& [path, owner] : m_owner_exceptions) {
    if (!(owner == m_result.owner)) {
      m_result.owner_exceptions.push_back({path, owner});
    }
  }
  return std::move(m_result);
}

// select_copy_sources(): the Selector's walk, recording each entry instead of writing it. Paths
// are computed as with --link (no base image): the base is part of the parent's cache key, and
// how it redirects the destination follows from it.
const BaseImage k_no_base{};

class SourceWalker final : public Selector {
public:
  SourceWalker(const BuildContext::Impl& context, const CopyStep& step, const SourceReader& reader)
      : Selector(context, step, k_no_base), m_reader(reader) {
    m_base_known = false;
  }

  Result<std::vector<SelectedEntry>> run();

private:
  void begin_source() override { m_links.clear(); }
  Result<void> unpack(const Item& item) override {
    // Sniff::none never marks an item as an archive.
    return fail(Code::internal, "select the sources of " + quoted(item.literal) +
                                    ": an archive cannot be unpacked without copying");
  }
  Result<UniqueFd> destination(const std::string& /*rel*/) override { return UniqueFd(); }
  Result<void> leaf(int src_dir, const std::string& src_name, const std::string& physical,
                    const struct stat& st, int dst_dir, const std::string& dst_name,
                    const std::string& rel) override;
  Result<UniqueFd> enter_dir(int dst_parent, const std::string& name, const std::string& rel,
                             const struct stat& st, DirRole role, bool& created) override;
  Result<void> take_dir(int src_dir, const std::string& physical, const struct stat& st,
                        int dst_parent, const std::string& name, const std::string& rel) override;
  Result<void> drop_dir(int dst_parent, const std::string& name, const std::string& rel) override;
  Result<void> inline_file(const dockerfile::InlineSource& source, int dst_parent,
                           const std::string& name, const std::string& rel) override;

  const SourceReader& m_reader;
  std::vector<SelectedEntry> m_entries;
  std::map<std::pair<dev_t, ino_t>, std::string> m_links; // per source, as in Engine
  std::set<std::string> m_parent_dirs;                    // --parents: recorded once
};

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Every directory the walk enters is recorded once take_dir() has its xattrs, except that a
// --parents component is recorded only the first time.
Result<UniqueFd> SourceWalker::enter_dir(int /*dst_parent*/, const std::string& /*name*/,
                                         const std::string& rel, const struct stat& /*st*/,
                                         DirRole role, bool& created) {
  created = role != DirRole::parent || m_parent_dirs.insert(rel).second;
  return UniqueFd();
}

Result<void> SourceWalker::take_dir(int src_dir, const std::string& physical, const struct stat& st,
                                    int /*dst_parent*/, const std::string& /*name*/,
                                    const std::string& rel) {
  SelectedEntry entry;
  entry.path = "/" + rel;
  entry.physical = physical;
  entry.type = EntryType::directory;
  entry.mode = mode_for(st);
  entry.mtime_ns = mtime_ns(st);
  if (m_reader.directory_xattrs) {
    MB_TRY_ASSIGN(entry.xattrs, m_reader.directory_xattrs(src_dir, physical));
  }
  m_entries.push_back(std::move(entry));
  return {};
}

// Nothing below the directory was kept, so its own entry is the last one recorded (Engine
// removes the directory it created for nothing).
Result<void> SourceWalker::drop_dir(int /*dst_parent*/, const std::string& /*name*/,
                                    const std::string& /*rel*/) {
  m_entries.pop_back();
  return {};
}

Result<void> SourceWalker::leaf(int src_dir, const std::string& src_name,
                                const std::string& physical, const struct stat& st, int /*dst_dir*/,
                                const std::string& /*dst_name*/, const std::string& rel) {
  SelectedEntry entry;
  entry.path = "/" + rel;
  entry.physical = physical;
  entry.mode = mode_for(st);
  entry.mtime_ns = mtime_ns(st);
  switch (st.st_mode & S_IFMT) {
  case S_IFREG: {
    entry.type = EntryType::regular;
    entry.size = static_cast<std::uint64_t>(st.st_size);
    if (st.st_nlink > 1) {
      auto link = m_links.find({st.st_dev, st.st_ino});
      if (link != m_links.end()) {
        entry.hardlink_to = link->second;
      } else {
        m_links[{st.st_dev, st.st_ino}] = entry.path;
      }
    }
    MB_TRY_ASSIGN(store::FileDigests digests, m_reader.file(src_dir, src_name, st, physical));
    entry.content = std::move(digests.content);
    entry.xattrs = std::move(digests.xattrs);
    break;
  }
  case S_IFLNK: {
    entry.type = EntryType::symlink;
    MB_TRY_ASSIGN(entry.link_target, read_link(src_dir, src_name));
    break;
  }
  case S_IFIFO:
    entry.type = EntryType::fifo;
    break;
  case S_IFCHR:
  case S_IFBLK:
    entry.type = S_ISCHR(st.st_mode) ? EntryType::char_device : EntryType::block_device;
    entry.rdev = static_cast<std::uint64_t>(st.st_rdev);
    break;
  default:
    return {}; // a socket: left out of the layer (Engine::leaf warns)
  }
  m_entries.push_back(std::move(entry));
  return {};
}

Result<void> SourceWalker::inline_file(const dockerfile::InlineSource& source, int /*dst_parent*/,
                                       const std::string& /*name*/, const std::string& rel) {
  SelectedEntry entry;
  entry.path = "/" + rel;
  entry.type = EntryType::regular;
  entry.mode = inline_mode();
  entry.size = source.content.size();
  entry.content = oci::sha256_of(source.content);
  m_entries.push_back(std::move(entry));
  return {};
}

Result<std::vector<SelectedEntry>> SourceWalker::run() {
  MB_TRY(check_flags());
  MB_TRY(walk(Sniff::none));
  return std::move(m_entries);
}

std::string describe(const CopyStep& step) {
  std::string text = step.kind == CopyKind::copy ? "COPY" : "ADD";
  for (const std::string& source : step.sources) {
    text += " " + source;
  }
  for (const auto& source : step.inline_sources) {
    text += " <<" + source.name;
  }
  return text + " " + step.dest;
}

} // namespace

Result<StagedCopy> stage_copy(const BuildContext& context, const CopyStep& step,
                              const BaseImage& base, const std::string& staging_dir) {
  auto staging = StagingTree::open(staging_dir);
  if (!staging) {
    return fail(std::move(staging).error().wrap(describe(step)));
  }
  Engine engine(context.impl(), step, base, std::move(*staging));
  auto result = engine.run();
  if (!result) {
    return fail(std::move(result).error().wrap(describe(step)));
  }
  return result;
}

Result<std::vector<SelectedEntry>>
select_copy_sources(const BuildContext& context, const CopyStep& step, const SourceReader& reader) {
  SourceWalker walker(context.impl(), step, reader);
  auto result = walker.run();
  if (!result) {
    return fail(std::move(result).error().wrap(describe(step)));
  }
  return result;
}

} // namespace minibuild::build
