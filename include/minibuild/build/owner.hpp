// COPY/ADD --chown: `user[:group]` resolved to numeric ids against the base image.
//
// Docker's rules (docs.docker.com/reference/dockerfile/#copy---chown---chmod):
//   - numeric ids are used as they are; a user without a group uses the same number as the group
//     (`--chown=10` is 10:10);
//   - names are looked up in the image's /etc/passwd and /etc/group; a user name without a group
//     uses that user's primary group;
//   - without --chown every entry belongs to 0:0.
// BuildKit silently falls back to 0 when a name is not in the file (or the file is missing);
// minibuild fails instead, with a message naming the file, because a COPY that silently gives
// files to root is rarely what the author meant.
#pragma once

#include <minibuild/base/error.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace minibuild::build {

struct Owner {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;

  bool operator==(const Owner&) const = default;
};

/// Reads a file of the base image by absolute path ("/etc/passwd"): its content, or nullopt when
/// the image has no such file. Called at most once per file and only for names.
using BaseFileReader = std::function<Result<std::optional<std::string>>(const std::string& path)>;

/// Resolves a --chown value. An empty `spec` is 0:0. Fails with Code::dockerfile for a malformed
/// value (empty user or group, `a:b:c`, an id above 4294967294) and Code::build_failed for a name
/// the base image does not know ("--chown=app: no user \"app\" in the base image's /etc/passwd").
/// `read_file` may be empty when the base has no files (scratch); names then fail.
Result<Owner> resolve_owner(std::string_view spec, const BaseFileReader& read_file);

/// The uid and primary gid of `name` in passwd(5) text, or nullopt. Malformed lines are skipped,
/// as libcontainer's parser does.
std::optional<Owner> lookup_passwd(std::string_view passwd, std::string_view name);

/// The gid of `name` in group(5) text, or nullopt.
std::optional<std::uint32_t> lookup_group(std::string_view group, std::string_view name);

} // namespace minibuild::build
