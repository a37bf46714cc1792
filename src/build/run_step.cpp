#include "run_step.hpp"

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace minibuild::build {
namespace {

constexpr std::size_t k_max_read = 4 * 1024 * 1024;

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) {
      return parts;
    }
    start = end + 1;
  }
}

std::optional<std::uint32_t> parse_id(std::string_view text) {
  std::uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      value == 4294967295U) {
    return std::nullopt;
  }
  return value;
}

template <typename Visit>
void for_each_line(std::string_view text, Visit&& visit) {
  for (const auto line : split(text, '\n')) {
    if (!line.empty() && line.front() != '#') {
      visit(line);
    }
  }
}

bool is_whiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

bool is_opaque(int dir_fd) {
  char value[4] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(dir_fd);
  const ssize_t n = ::getxattr(path.c_str(), "user.overlay.opaque", value, sizeof value);
  return n == 1 && value[0] == 'y';
}

// BuildKit's MustParseHeredoc: the whole word is `[digits]<<[-]NAME`, NAME one word.
bool is_lone_heredoc(std::string_view word) {
  word.remove_prefix(std::min(word.find_first_not_of("0123456789"), word.size()));
  if (word.substr(0, 2) != "<<") {
    return false;
  }
  word.remove_prefix(word.size() > 2 && word[2] == '-' ? 3 : 2);
  word.remove_prefix(std::min(word.find_first_not_of(" \t"), word.size()));
  return !word.empty() && word.find_first_of(" \t<") == std::string_view::npos;
}

} // namespace

Result<std::vector<std::string>> unpacked_lower_dirs(store::Store& store,
                                                     const std::vector<oci::Descriptor>& layers,
                                                     const std::vector<oci::Digest>& diff_ids) {
  if (diff_ids.size() != layers.size()) {
    return fail(Code::corrupt, "the image has " + std::to_string(layers.size()) +
                                   " layers but its config lists " +
                                   std::to_string(diff_ids.size()) + " diffIDs");
  }
  // As a pull unpacks: an owner this user namespace cannot hold is remembered in an xattr, so
  // a COPY onto the layer's directories still knows who owns them (single-id mode).
  layer::ApplyOptions options;
  options.record_owners = true;
  std::vector<std::string> lowers;
  for (std::size_t i = diff_ids.size(); i-- > 0;) {
    MB_TRY(store.layers().unpack_blob(diff_ids[i], store.blobs(), layers[i], options));
    lowers.push_back(store.layers().lower_dir(diff_ids[i]));
  }
  return lowers;
}

Result<std::optional<runtime::SeccompProgram>>
sandbox_seccomp(const std::optional<runtime::SeccompProfile>& profile, bool unconfined,
                runtime::CapabilitySet capabilities) {
  if (unconfined) {
    return std::optional<runtime::SeccompProgram>();
  }
  runtime::SeccompProfile chosen;
  if (profile) {
    chosen = *profile;
  } else {
    MB_TRY_ASSIGN(chosen, runtime::default_seccomp_profile());
  }
  MB_TRY_ASSIGN(runtime::SeccompProgram program, runtime::compile_seccomp(chosen, capabilities));
  return std::optional<runtime::SeccompProgram>(std::move(program));
}

Result<void> make_dirs(const std::vector<const std::string*>& dirs) {
  for (const auto* dir : dirs) {
    if (!dir->empty() && ::mkdir(dir->c_str(), 0755) != 0) {
      return fail_errno(errno, "mkdir \"" + *dir + "\"");
    }
  }
  return {};
}

Result<RunUser> resolve_run_user(std::string_view user, const BaseFileReader& read_file) {
  RunUser result;
  if (user.empty()) {
    user = "0";
  }
  const auto parts = split(user, ':');
  if (parts.size() > 2 || parts[0].empty()) {
    return fail(Code::dockerfile, "invalid USER \"" + std::string(user) + "\"");
  }
  std::optional<std::string> passwd;
  std::optional<std::string> group;
  if (read_file) {
    MB_TRY_ASSIGN(passwd, read_file("/etc/passwd"));
    MB_TRY_ASSIGN(group, read_file("/etc/group"));
  }
  const std::string_view name = parts[0];
  std::string user_name;
  if (const auto uid = parse_id(name)) {
    result.uid = *uid;
    // libcontainer: a numeric uid takes the passwd entry with that uid when there is one.
    if (passwd) {
      for_each_line(*passwd, [&](std::string_view line) {
        const auto fields = split(line, ':');
        if (fields.size() >= 6 && user_name.empty() && parse_id(fields[2]) == uid) {
          user_name = std::string(fields[0]);
          result.gid = parse_id(fields[3]).value_or(0);
          result.home = std::string(fields[5]);
        }
      });
    }
  } else {
    bool found = false;
    if (passwd) {
      for_each_line(*passwd, [&](std::string_view line) {
        const auto fields = split(line, ':');
        if (!found && fields.size() >= 6 && fields[0] == name) {
          const auto entry_uid = parse_id(fields[2]);
          const auto entry_gid = parse_id(fields[3]);
          if (entry_uid && entry_gid) {
            found = true;
            result.uid = *entry_uid;
            result.gid = *entry_gid;
            result.home = std::string(fields[5]);
          }
        }
      });
    }
    if (!found) {
      return fail(Code::build_failed, "unable to find user " + std::string(name) +
                                          ": no matching entries in passwd file");
    }
    user_name = std::string(name);
  }
  if (parts.size() == 2) {
    const std::string_view group_name = parts[1];
    if (const auto gid = parse_id(group_name)) {
      result.gid = *gid;
    } else {
      std::optional<std::uint32_t> found;
      if (group) {
        for_each_line(*group, [&](std::string_view line) {
          const auto fields = split(line, ':');
          if (!found && fields.size() >= 3 && fields[0] == group_name) {
            found = parse_id(fields[2]);
          }
        });
      }
      if (!found) {
        return fail(Code::build_failed, "unable to find group " + std::string(group_name) +
                                            ": no matching entries in group file");
      }
      result.gid = *found;
    }
  }
  result.groups.push_back(result.gid);
  // Supplementary groups only for a user named in passwd and no explicit group (Docker's rule:
  // `USER app:grp` runs with exactly that group).
  if (group && !user_name.empty() && parts.size() == 1) {
    for_each_line(*group, [&](std::string_view line) {
      const auto fields = split(line, ':');
      if (fields.size() < 4) {
        return;
      }
      const auto gid = parse_id(fields[2]);
      if (!gid) {
        return;
      }
      for (const auto member : split(fields[3], ',')) {
        if (member == user_name &&
            std::find(result.groups.begin(), result.groups.end(), *gid) == result.groups.end()) {
          result.groups.push_back(*gid);
        }
      }
    });
  }
  if (result.home.empty()) {
    result.home = "/";
  }
  return result;
}

Result<std::optional<std::string>> read_file_from_layers(const std::vector<std::string>& lowers,
                                                         std::string_view path) {
  std::vector<std::string> components;
  for (const auto part : split(path, '/')) {
    if (!part.empty() && part != ".") {
      components.emplace_back(part);
    }
  }
  if (components.empty()) {
    return std::optional<std::string>();
  }
  for (const auto& lower : lowers) {
    UniqueFd dir(::open(lower.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
      return fail_errno(errno, "open layer \"" + lower + "\"");
    }
    bool opaque_on_the_way = false; // lower layers cannot show through an opaque directory
    bool missing = false;
    for (std::size_t i = 0; i + 1 < components.size(); ++i) {
      struct stat st {};
      if (::fstatat(dir.get(), components[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        missing = true;
        break;
      }
      if (!S_ISDIR(st.st_mode)) {
        // A whiteout hides the directory; a file or symlink in its place ends the path here.
        return std::optional<std::string>();
      }
      UniqueFd next(::openat(dir.get(), components[i].c_str(),
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next) {
        return fail_errno(errno, "open \"" + lower + "/" + components[i] + "\"");
      }
      dir = std::move(next);
      opaque_on_the_way = opaque_on_the_way || is_opaque(dir.get());
    }
    if (missing) {
      if (opaque_on_the_way) {
        return std::optional<std::string>(); // the rest of the path is below an opaque dir
      }
      continue;
    }
    struct stat st {};
    if (::fstatat(dir.get(), components.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (is_whiteout(st) || !S_ISREG(st.st_mode)) {
        return std::optional<std::string>();
      }
      UniqueFd file(
          ::openat(dir.get(), components.back().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!file) {
        return fail_errno(errno, "open \"" + lower + std::string(path) + "\"");
      }
      std::string content;
      char buffer[8192];
      ssize_t n = 0;
      while ((n = ::read(file.get(), buffer, sizeof buffer)) > 0 && content.size() < k_max_read) {
        content.append(buffer, static_cast<std::size_t>(n));
      }
      return std::optional<std::string>(std::move(content));
    }
    if (opaque_on_the_way) {
      return std::optional<std::string>();
    }
  }
  return std::optional<std::string>();
}

std::vector<std::string> run_environment(const std::vector<std::string>& image_env,
                                         const dockerfile::Environment& args,
                                         const std::string& home) {
  std::vector<std::string> env = image_env;
  const auto has = [&env](std::string_view name) {
    return std::any_of(env.begin(), env.end(), [name](const std::string& entry) {
      return entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
             entry[name.size()] == '=';
    });
  };
  for (const auto& [name, value] : args.entries()) {
    if (!has(name)) {
      env.push_back(name + "=" + value);
    }
  }
  if (!has("PATH")) {
    env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  }
  if (!has("HOME")) {
    env.push_back("HOME=" + home);
  }
  return env;
}

std::vector<std::string> command_argv(const dockerfile::CommandLine& command,
                                      const std::vector<std::string>& shell) {
  if (!command.shell_form) {
    return command.args;
  }
  std::vector<std::string> argv = shell;
  if (argv.empty()) {
    argv = {"/bin/sh", "-c"};
  }
  std::string text;
  for (std::size_t i = 0; i < command.args.size(); ++i) {
    text += (i == 0 ? "" : " ") + command.args[i];
  }
  if (command.heredocs.size() == 1 && is_lone_heredoc(text)) {
    // `RUN <<EOF` alone: the body is the script (BuildKit runs it with the shell).
    text = command.heredocs.front().content;
  } else {
    // `RUN cat <<EOF > f`, `RUN <<EOF bash`: BuildKit hands the shell the heredocs too.
    for (const auto& heredoc : command.heredocs) {
      text += "\n" + heredoc.content + heredoc.name;
    }
  }
  argv.push_back(std::move(text));
  return argv;
}

std::string run_created_by(const std::vector<std::string>& argv,
                           const dockerfile::Environment& args) {
  std::string text = "RUN ";
  if (!args.entries().empty()) {
    text += "|" + std::to_string(args.entries().size());
    for (const auto& [name, value] : args.entries()) {
      text += " " + name + "=" + value;
    }
    text += " ";
  }
  for (std::size_t i = 0; i < argv.size(); ++i) {
    text += (i == 0 ? "" : " ") + argv[i];
  }
  return text;
}

Result<void> remove_mount_stubs(const std::string& upper_dir, std::string_view stubs_text,
                                StubParents keep_parents) {
  std::vector<std::string> stubs;
  for (const auto line : split(stubs_text, '\n')) {
    if (!line.empty() && line.find("..") == std::string_view::npos) {
      stubs.emplace_back(line);
    }
  }
  // Deepest first, so a directory is empty by the time its turn comes.
  std::sort(stubs.begin(), stubs.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
  });
  UniqueFd upper(::open(upper_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!upper) {
    return fail_errno(errno, "open \"" + upper_dir + "\"");
  }
  std::vector<std::string> parents;
  for (const auto& stub : stubs) {
    struct stat st {};
    if (::fstatat(upper.get(), stub.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
      ::unlinkat(upper.get(), stub.c_str(), 0);
    } else if (S_ISDIR(st.st_mode)) {
      ::unlinkat(upper.get(), stub.c_str(), AT_REMOVEDIR); // fails (kept) when not empty
    }
    for (std::size_t slash = keep_parents == StubParents::keep ? std::string::npos
                                                               : stub.rfind('/');
         slash != std::string::npos && slash > 0; slash = stub.rfind('/', slash - 1)) {
      parents.push_back(stub.substr(0, slash));
    }
  }
  // Directories overlay copied up to hold a stub: empty and not opaque, they say nothing.
  std::sort(parents.begin(), parents.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  parents.erase(std::unique(parents.begin(), parents.end()), parents.end());
  for (const auto& parent : parents) {
    UniqueFd dir(
        ::openat(upper.get(), parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir || is_opaque(dir.get())) {
      continue;
    }
    dir.reset();
    ::unlinkat(upper.get(), parent.c_str(), AT_REMOVEDIR);
  }
  return {};
}

} // namespace minibuild::build
