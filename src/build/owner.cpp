#include <minibuild/build/owner.hpp>

#include <charconv>
#include <vector>

namespace minibuild::build {

namespace {

// Ids are 32-bit, and (uid_t)-1 means "unchanged" to chown(2), so it cannot name an owner.
constexpr std::uint64_t k_max_id = 4294967294ULL;

std::optional<std::uint32_t> parse_id(std::string_view text) {
  if (text.empty() || text.size() > 10) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > k_max_id) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

bool all_digits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return !text.empty();
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

// Calls `line_fn` for each line (without the newline or a trailing '\r').
template <typename Fn>
void for_each_line(std::string_view text, Fn&& line_fn) {
  for (std::string_view line : split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') {
      continue;
    }
    if (line_fn(line)) {
      return;
    }
  }
}

Result<std::string> read_required(const BaseFileReader& read_file, const std::string& path,
                                  std::string_view spec, std::string_view kind,
                                  std::string_view name) {
  std::optional<std::string> text;
  if (read_file) {
    MB_TRY_ASSIGN(text, read_file(path));
  }
  if (!text) {
    return fail(Code::build_failed, "--chown=" + std::string(spec) + ": cannot resolve " +
                                        std::string(kind) + " \"" + std::string(name) +
                                        "\": the base image has no " + path);
  }
  return std::move(*text);
}

} // namespace

std::optional<Owner> lookup_passwd(std::string_view passwd, std::string_view name) {
  std::optional<Owner> found;
  for_each_line(passwd, [&](std::string_view line) {
    const auto fields = split(line, ':');
    if (fields.size() < 4 || fields[0] != name) {
      return false;
    }
    auto uid = parse_id(fields[2]);
    auto gid = parse_id(fields[3]);
    if (!uid || !gid) {
      return false;
    }
    found = Owner{*uid, *gid};
    return true;
  });
  return found;
}

std::optional<std::uint32_t> lookup_group(std::string_view group, std::string_view name) {
  std::optional<std::uint32_t> found;
  for_each_line(group, [&](std::string_view line) {
    const auto fields = split(line, ':');
    if (fields.size() < 3 || fields[0] != name) {
      return false;
    }
    found = parse_id(fields[2]);
    return found.has_value();
  });
  return found;
}

Result<Owner> resolve_owner(std::string_view spec, const BaseFileReader& read_file) {
  if (spec.empty()) {
    return Owner{};
  }
  const auto parts = split(spec, ':');
  if (parts.size() > 2 || parts[0].empty() || (parts.size() == 2 && parts[1].empty())) {
    return fail(Code::dockerfile,
                "invalid --chown value \"" + std::string(spec) + "\": expected user[:group]");
  }
  const std::string_view user = parts[0];
  Owner owner;
  if (all_digits(user)) {
    auto uid = parse_id(user);
    if (!uid) {
      return fail(Code::dockerfile,
                  "invalid --chown value \"" + std::string(spec) + "\": user id out of range");
    }
    owner = Owner{*uid, *uid};
  } else {
    MB_TRY_ASSIGN(const std::string passwd,
                  read_required(read_file, "/etc/passwd", spec, "user", user));
    auto found = lookup_passwd(passwd, user);
    if (!found) {
      return fail(Code::build_failed, "--chown=" + std::string(spec) + ": no user \"" +
                                          std::string(user) + "\" in the base image's /etc/passwd");
    }
    owner = *found;
  }
  if (parts.size() == 2) {
    const std::string_view group = parts[1];
    if (all_digits(group)) {
      auto gid = parse_id(group);
      if (!gid) {
        return fail(Code::dockerfile,
                    "invalid --chown value \"" + std::string(spec) + "\": group id out of range");
      }
      owner.gid = *gid;
    } else {
      MB_TRY_ASSIGN(const std::string group_text,
                    read_required(read_file, "/etc/group", spec, "group", group));
      auto gid = lookup_group(group_text, group);
      if (!gid) {
        return fail(Code::build_failed, "--chown=" + std::string(spec) + ": no group \"" +
                                            std::string(group) +
                                            "\" in the base image's /etc/group");
      }
      owner.gid = *gid;
    }
  }
  return owner;
}

} // namespace minibuild::build
