// Registry credentials: Docker's config.json, containers-auth.json and docker-credential-*
// helpers (credentials.hpp). Formats: docker/cli cli/config/configfile, containers-auth.json(5),
// docker/docker-credential-helpers (the helper protocol).
#include "text.hpp"

#include <minibuild/base/file.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/registry/credentials.hpp>

#include <climits>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <random>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tuple>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace minibuild::registry {
namespace {

using text::lower;

// The files are edited, not regenerated: ordered_json keeps the user's key order.
using Json = nlohmann::ordered_json;

constexpr std::string_view k_docker_hub_key = "https://index.docker.io/v1/";
constexpr std::string_view k_helper_prefix = "docker-credential-";
// What docker-credential-helpers print (credentials.NewErrCredentialsNotFound) when a helper
// has nothing for the server; every helper built on that library says it.
constexpr std::string_view k_not_found_text = "credentials not found";
// A helper answers with one small JSON object; more than this is not a helper's answer.
constexpr std::size_t k_max_helper_output = 1 << 20;

std::string in_quotes(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// The credential key of a stored key: "https://ghcr.io", "ghcr.io/v2/" and "GHCR.io" all
// name ghcr.io; "https://index.docker.io/v1/" names Docker Hub.
std::string normalized_key(std::string_view key) {
  std::string text = lower(key);
  std::string_view rest = text;
  for (std::string_view scheme : {"https://", "http://"}) {
    if (rest.starts_with(scheme)) {
      rest.remove_prefix(scheme.size());
      break;
    }
  }
  rest = rest.substr(0, rest.find('/'));
  return credential_key(rest);
}

bool key_matches(std::string_view stored_key, std::string_view registry_host) {
  return normalized_key(stored_key) == credential_key(lower(registry_host));
}

// A parsed credential file; `exists` is false when there is no file at all.
struct CredentialFile {
  std::string path;
  bool exists = false;
  Json json = Json::object();
};

Result<CredentialFile> load_file(const std::string& path) {
  CredentialFile file;
  file.path = path;
  auto text = read_file(path);
  if (!text) {
    if (text.error().code() == Code::not_found) {
      return file;
    }
    return fail(std::move(text).error().wrap("read credentials"));
  }
  file.exists = true;
  // Docker accepts an empty config.json (it decodes to io.EOF, which it ignores).
  if (std::ranges::all_of(*text, [](unsigned char c) { return std::isspace(c) != 0; })) {
    return file;
  }
  file.json = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (file.json.is_discarded()) {
    return fail(Code::corrupt, "credentials file " + in_quotes(path) + " is not valid JSON");
  }
  if (!file.json.is_object()) {
    return fail(Code::corrupt, "credentials file " + in_quotes(path) + " is not a JSON object");
  }
  for (const char* field : {"auths", "credHelpers"}) {
    if (file.json.contains(field) && !file.json[field].is_object()) {
      return fail(Code::corrupt,
                  "credentials file " + in_quotes(path) + ": \"" + field + "\" is not an object");
    }
  }
  if (file.json.contains("credsStore") && !file.json["credsStore"].is_string()) {
    return fail(Code::corrupt,
                "credentials file " + in_quotes(path) + ": \"credsStore\" is not a string");
  }
  return file;
}

// The helper credHelpers names for `registry_host` (any key naming the host), if any.
Result<std::optional<std::string>> registry_helper(const CredentialFile& file,
                                                   std::string_view registry_host) {
  auto helpers = file.json.find("credHelpers");
  if (helpers == file.json.end()) {
    return std::nullopt;
  }
  for (auto it = helpers->begin(); it != helpers->end(); ++it) {
    if (!key_matches(it.key(), registry_host)) {
      continue;
    }
    if (!it->is_string() || it->get<std::string>().empty()) {
      return fail(Code::corrupt, "credentials file " + in_quotes(file.path) + ": credHelpers[" +
                                     in_quotes(it.key()) + "] is not a helper name");
    }
    return it->get<std::string>();
  }
  return std::nullopt;
}

std::optional<std::string> store_helper(const CredentialFile& file) {
  if (auto store = file.json.find("credsStore"); store != file.json.end()) {
    if (std::string name = store->get<std::string>(); !name.empty()) {
      return name;
    }
  }
  return std::nullopt;
}

// The helper that keeps the secrets of `registry_host`, for store and erase.
Result<std::optional<std::string>> configured_helper(const CredentialFile& file,
                                                     std::string_view registry_host) {
  MB_TRY_ASSIGN(std::optional<std::string> helper, registry_helper(file, registry_host));
  if (helper) {
    return helper;
  }
  return store_helper(file);
}

// The directories searched for a helper: helper_path, else $PATH (the default of execvp when
// unset). Empty entries ("the current directory" in POSIX) are skipped on purpose: a helper
// receives secrets, so it is never picked up from wherever the command happens to run.
std::vector<std::string> helper_directories(const CredentialEnvironment& environment) {
  std::string path = environment.helper_path;
  if (path.empty()) {
    const char* value = std::getenv("PATH");
    path = value != nullptr ? value : "/usr/local/bin:/usr/bin:/bin";
  }
  std::vector<std::string> directories;
  std::string_view rest = path;
  while (!rest.empty()) {
    std::size_t colon = rest.find(':');
    std::string_view entry = rest.substr(0, colon);
    if (!entry.empty()) {
      directories.emplace_back(entry);
    }
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
  }
  return directories;
}

struct HelperOutput {
  int exit_status = 0;
  std::string out;
  std::string err;
};

// Runs `docker-credential-NAME ACTION` with `input` on stdin. The executable is looked up by
// us, not by posix_spawnp, because posix_spawnp searches the parent's $PATH and helper_path
// must win without touching the process environment (other threads may read it).
Result<HelperOutput> run_helper(const CredentialEnvironment& environment, std::string_view name,
                                std::string_view action, std::string_view input) {
  const std::string program = std::string(k_helper_prefix) + std::string(name);
  if (name.find('/') != std::string_view::npos) {
    return fail(Code::auth, "credential helper name " + in_quotes(name) + " contains '/'");
  }
  std::string executable;
  for (const std::string& directory : helper_directories(environment)) {
    std::string candidate = directory + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      executable = std::move(candidate);
      break;
    }
  }
  if (executable.empty()) {
    return fail(Code::auth, "credential helper " + program + " not found in " +
                                (environment.helper_path.empty() ? "$PATH" : "the helper path"));
  }

  // stdin is a socket so that writing to a helper that already exited gives EPIPE through
  // MSG_NOSIGNAL instead of a SIGPIPE that would kill minibuild.
  int in_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0) {
    return fail_errno(errno, "run " + program + ": socketpair");
  }
  UniqueFd in_parent(in_pair[0]);
  UniqueFd in_child(in_pair[1]);
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return fail_errno(errno, "run " + program + ": pipe");
  }
  UniqueFd out_parent(out_pipe[0]);
  UniqueFd out_child(out_pipe[1]);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return fail_errno(errno, "run " + program + ": pipe");
  }
  UniqueFd err_parent(err_pipe[0]);
  UniqueFd err_child(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, in_child.get(), STDIN_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, out_child.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err_child.get(), STDERR_FILENO);
  // The helper starts with default signal handling whatever this process ignores or blocks
  // (an ignored SIGPIPE survives exec).
  posix_spawnattr_t attributes;
  ::posix_spawnattr_init(&attributes);
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  ::posix_spawnattr_setsigmask(&attributes, &empty);
  ::posix_spawnattr_setsigdefault(&attributes, &defaults);
  ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string action_text(action);
  char* argv[] = {executable.data(), action_text.data(), nullptr};
  pid_t pid = -1;
  int spawn_error = ::posix_spawn(&pid, executable.c_str(), &actions, &attributes, argv, environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attributes);
  if (spawn_error != 0) {
    return fail_errno(spawn_error, "run " + in_quotes(executable));
  }
  in_child.reset();
  out_child.reset();
  err_child.reset();

  // Feed stdin and drain stdout and stderr together: a helper may write before it has read
  // everything, and either side blocking on a full pipe would deadlock us both.
  HelperOutput output;
  std::string_view pending = input;
  if (pending.empty()) {
    ::shutdown(in_parent.get(), SHUT_WR);
    in_parent.reset();
  } else {
    ::fcntl(in_parent.get(), F_SETFL, ::fcntl(in_parent.get(), F_GETFL) | O_NONBLOCK);
  }
  Error io_error(Code::internal, "");
  bool failed = false;
  while (in_parent || out_parent || err_parent) {
    pollfd fds[3] = {{in_parent.get(), POLLOUT, 0},
                     {out_parent.get(), POLLIN, 0},
                     {err_parent.get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      io_error = Error::from_errno(errno, "run " + program + ": poll");
      failed = true;
      break;
    }
    if (in_parent && fds[0].revents != 0) {
      ssize_t n = ::send(in_parent.get(), pending.data(), pending.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        pending.remove_prefix(static_cast<std::size_t>(n));
      }
      // EPIPE: the helper does not want (more) input; its exit status tells the rest.
      if (pending.empty() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        in_parent.reset();
      }
    }
    for (auto [index, fd, text] :
         {std::tuple{1, &out_parent, &output.out}, std::tuple{2, &err_parent, &output.err}}) {
      if (!*fd || fds[index].revents == 0) {
        continue;
      }
      char buffer[4096];
      ssize_t n = ::read(fd->get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        fd->reset();
        continue;
      }
      if (text->size() < k_max_helper_output) {
        text->append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  in_parent.reset();
  out_parent.reset();
  err_parent.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno(errno, "wait for " + program);
    }
  }
  if (failed) {
    return fail(std::move(io_error));
  }
  if (WIFSIGNALED(status)) {
    return fail(Code::auth, program + " " + action_text + ": killed by signal " +
                                std::to_string(WTERMSIG(status)));
  }
  output.exit_status = WEXITSTATUS(status);
  return output;
}

bool says_not_found(const HelperOutput& output) {
  return lower(output.out).find(k_not_found_text) != std::string::npos ||
         lower(output.err).find(k_not_found_text) != std::string::npos;
}

// A failed helper's own explanation, for the error message: its first line of stderr (else
// stdout), unless that looks like JSON, which could hold a secret.
std::string helper_failure(std::string_view program, std::string_view action,
                           std::string_view registry_host, const HelperOutput& output) {
  std::string_view text = output.err.find_first_not_of(" \t\r\n") != std::string::npos
                              ? std::string_view(output.err)
                              : std::string_view(output.out);
  std::size_t start = text.find_first_not_of(" \t\r\n");
  text = start == std::string_view::npos ? std::string_view() : text.substr(start);
  text = text.substr(0, std::min<std::size_t>(text.find_first_of("\r\n"), 200));
  std::string message = std::string(program) + " " + std::string(action) + " for " +
                        std::string(registry_host) + ": exit status " +
                        std::to_string(output.exit_status);
  if (!text.empty() && !text.starts_with('{')) {
    message += ": " + std::string(text);
  }
  return message;
}

Result<std::optional<Credentials>> helper_get(const CredentialEnvironment& environment,
                                              std::string_view name,
                                              std::string_view registry_host) {
  const std::string program = std::string(k_helper_prefix) + std::string(name);
  const std::string server = credential_key(registry_host);
  MB_TRY_ASSIGN(HelperOutput output, run_helper(environment, name, "get", server));
  if (output.exit_status != 0) {
    if (says_not_found(output)) {
      return std::nullopt;
    }
    return fail(Code::auth, helper_failure(program, "get", registry_host, output));
  }
  const auto answer = nlohmann::json::parse(output.out, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) {
    return fail(Code::auth, program + " get for " + std::string(registry_host) +
                                ": the answer is not a JSON object");
  }
  auto field = [&](const char* key) -> std::optional<std::string> {
    auto it = answer.find(key);
    if (it == answer.end() || it->is_null()) {
      return std::string();
    }
    if (!it->is_string()) {
      return std::nullopt;
    }
    return it->get<std::string>();
  };
  std::optional<std::string> username = field("Username");
  std::optional<std::string> secret = field("Secret");
  if (!username || !secret) {
    return fail(Code::auth, program + " get for " + std::string(registry_host) +
                                ": Username and Secret must be strings");
  }
  if (secret->empty()) {
    return std::nullopt;
  }
  Credentials credentials;
  // docker/cli credentials/native_store.go: "<token>" marks an identity token.
  if (*username == "<token>") {
    credentials.identity_token = std::move(*secret);
  } else {
    credentials.username = std::move(*username);
    credentials.password = std::move(*secret);
  }
  return credentials;
}

// The credentials of one `auths` entry; nullopt for an entry without any (Docker writes `{}`
// entries next to a credsStore).
Result<std::optional<Credentials>> entry_credentials(const CredentialFile& file,
                                                     const std::string& key, const Json& entry) {
  const std::string where =
      "credentials file " + in_quotes(file.path) + ": auths[" + in_quotes(key) + "]";
  if (!entry.is_object()) {
    return fail(Code::corrupt, where + " is not an object");
  }
  auto string_field = [&](const char* name) -> Result<std::string> {
    auto it = entry.find(name);
    if (it == entry.end() || it->is_null()) {
      return std::string();
    }
    if (!it->is_string()) {
      return fail(Code::corrupt, where + "." + name + " is not a string");
    }
    return it->get<std::string>();
  };
  Credentials credentials;
  MB_TRY_ASSIGN(std::string auth, string_field("auth"));
  MB_TRY_ASSIGN(credentials.identity_token, string_field("identitytoken"));
  if (!auth.empty()) {
    // base64_decode's message never quotes its input, so the secret cannot leak through it.
    auto decoded = oci::base64_decode(auth);
    if (!decoded) {
      return fail(Code::corrupt, where + ".auth is not valid base64");
    }
    std::size_t colon = decoded->find(':');
    if (colon == std::string::npos) {
      return fail(Code::corrupt, where + ".auth is not base64 of \"user:password\"");
    }
    // The user name cannot contain ':' (RFC 7617); the password may.
    credentials.username = decoded->substr(0, colon);
    credentials.password = decoded->substr(colon + 1);
  } else {
    // Old Docker files and hand-written ones spell the pair out.
    MB_TRY_ASSIGN(credentials.username, string_field("username"));
    MB_TRY_ASSIGN(credentials.password, string_field("password"));
  }
  if (credentials.password.empty() && credentials.identity_token.empty()) {
    return std::nullopt;
  }
  return credentials;
}

// The credentials one file holds for `registry_host`, in the order of credentials.hpp.
Result<std::optional<Credentials>> file_credentials(const CredentialEnvironment& environment,
                                                    const CredentialFile& file,
                                                    std::string_view registry_host) {
  auto from_helper = [&](const std::string& name) -> Result<std::optional<Credentials>> {
    auto found = helper_get(environment, name, registry_host);
    if (!found) {
      return fail(
          std::move(found).error().wrap("credential helper configured in " + in_quotes(file.path)));
    }
    return found;
  };
  MB_TRY_ASSIGN(std::optional<std::string> helper, registry_helper(file, registry_host));
  if (helper) {
    return from_helper(*helper);
  }
  if (auto auths = file.json.find("auths"); auths != file.json.end()) {
    // The exact key first, then any key naming the same host (with a scheme or a path).
    const std::string key = credential_key(registry_host);
    if (auto exact = auths->find(key); exact != auths->end()) {
      MB_TRY_ASSIGN(auto credentials, entry_credentials(file, key, *exact));
      if (credentials) {
        return credentials;
      }
    }
    for (auto it = auths->begin(); it != auths->end(); ++it) {
      if (it.key() != key && key_matches(it.key(), registry_host)) {
        MB_TRY_ASSIGN(auto credentials, entry_credentials(file, it.key(), it.value()));
        if (credentials) {
          return credentials;
        }
      }
    }
  }
  if (std::optional<std::string> store = store_helper(file)) {
    return from_helper(*store);
  }
  return std::nullopt;
}

std::string parent_directory(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

// mkdir -p with 0700 for every directory created: credentials live below it.
Result<void> make_directories(const std::string& directory) {
  struct stat st {};
  if (::stat(directory.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return fail(Code::io, "create directory " + in_quotes(directory) + ": not a directory");
    }
    return {};
  }
  if (directory != "/" && directory != ".") {
    MB_TRY(make_directories(parent_directory(directory)));
  }
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail_errno(errno, "create directory " + in_quotes(directory));
  }
  return {};
}

Result<void> write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "write " + in_quotes(path));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

// Replaces `path` atomically: a temporary file in the same directory, fsync, rename, fsync of
// the directory. A symlink at `path` (dotfile managers link config.json) is followed, so the
// link stays and its target is replaced, as docker/cli does.
Result<void> write_file_atomically(std::string path, std::string_view content) {
  if (char resolved[PATH_MAX]; ::realpath(path.c_str(), resolved) != nullptr) {
    path = resolved;
  }
  const std::string directory = parent_directory(path);
  MB_TRY(make_directories(directory));
  UniqueFd directory_fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!directory_fd) {
    return fail_errno(errno, "open directory " + in_quotes(directory));
  }
  static thread_local std::mt19937_64 random(std::random_device{}());
  const std::string base =
      path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  std::string temp_name;
  UniqueFd fd;
  for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
    temp_name = "." + base + ".tmp-" + std::to_string(::getpid()) + "-" +
                std::to_string(random() % 1000000000ULL);
    fd.reset(::openat(directory_fd.get(), temp_name.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd && errno != EEXIST) {
      return fail_errno(errno, "create " + in_quotes(directory + "/" + temp_name));
    }
  }
  if (!fd) {
    return fail(Code::io,
                "create a temporary file in " + in_quotes(directory) + ": names keep colliding");
  }
  const std::string temp_path = directory + "/" + temp_name;
  // Whatever goes wrong below, the temporary file does not stay behind.
  struct RemoveTemp {
    int dir;
    const std::string& name;
    bool armed = true;
    ~RemoveTemp() {
      if (armed) {
        ::unlinkat(dir, name.c_str(), 0);
      }
    }
  } remove_temp{directory_fd.get(), temp_name};
  // 0600 whatever the umask allowed at creation (it can only have removed bits, but be exact).
  if (::fchmod(fd.get(), 0600) != 0) {
    return fail_errno(errno, "chmod " + in_quotes(temp_path));
  }
  MB_TRY(write_all(fd.get(), content, temp_path));
  if (::fsync(fd.get()) != 0) {
    return fail_errno(errno, "fsync " + in_quotes(temp_path));
  }
  if (::close(fd.release()) != 0) {
    return fail_errno(errno, "close " + in_quotes(temp_path));
  }
  if (::renameat(directory_fd.get(), temp_name.c_str(), directory_fd.get(), base.c_str()) != 0) {
    return fail_errno(errno, "rename " + in_quotes(temp_path) + " to " + in_quotes(path));
  }
  remove_temp.armed = false;
  if (::fsync(directory_fd.get()) != 0) {
    return fail_errno(errno, "fsync directory " + in_quotes(directory));
  }
  return {};
}

Result<void> save_file(const CredentialFile& file) {
  std::string text;
  try {
    // Docker indents config.json with tabs.
    text = file.json.dump(1, '\t') + "\n";
  } catch (const nlohmann::json::exception&) {
    // dump() throws only for strings that are not UTF-8; the message would quote them.
    return fail(Code::usage, "write " + in_quotes(file.path) + ": a value is not valid UTF-8");
  }
  return write_file_atomically(file.path, text);
}

// Removes the secrets from every `auths` entry naming `registry_host`, keeping any other field;
// true when something was removed.
bool strip_secrets(Json& auths, std::string_view registry_host) {
  bool changed = false;
  for (auto it = auths.begin(); it != auths.end(); ++it) {
    if (!key_matches(it.key(), registry_host) || !it->is_object()) {
      continue;
    }
    for (const char* field : {"auth", "identitytoken", "username", "password"}) {
      changed = it->erase(field) > 0 || changed;
    }
  }
  return changed;
}

} // namespace

CredentialEnvironment CredentialEnvironment::from_process() {
  auto variable = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value != nullptr ? value : "");
  };
  CredentialEnvironment environment;
  environment.registry_auth_file = variable("REGISTRY_AUTH_FILE");
  environment.xdg_runtime_dir = variable("XDG_RUNTIME_DIR");
  environment.docker_config = variable("DOCKER_CONFIG");
  environment.home = variable("HOME");
  if (environment.home.empty()) {
    // Under `env -i` or some service managers HOME is unset; Go's os/user falls back the same.
    struct passwd entry {};
    struct passwd* result = nullptr;
    std::vector<char> buffer(16384);
    if (::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &result) == 0 &&
        result != nullptr && result->pw_dir != nullptr) {
      environment.home = result->pw_dir;
    }
  }
  return environment;
}

std::string credential_key(std::string_view registry_host) {
  const std::string host = lower(registry_host);
  if (host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io") {
    return std::string(k_docker_hub_key);
  }
  return std::string(registry_host);
}

Result<std::optional<Credentials>> find_credentials(const CredentialEnvironment& environment,
                                                    std::string_view registry_host) {
  std::vector<std::string> paths;
  if (!environment.registry_auth_file.empty()) {
    paths.push_back(environment.registry_auth_file);
  }
  if (!environment.xdg_runtime_dir.empty()) {
    paths.push_back(environment.xdg_runtime_dir + "/containers/auth.json");
  }
  if (!environment.docker_config.empty()) {
    paths.push_back(environment.docker_config + "/config.json");
  } else if (!environment.home.empty()) {
    paths.push_back(environment.home + "/.docker/config.json");
  }
  for (const std::string& path : paths) {
    MB_TRY_ASSIGN(CredentialFile file, load_file(path));
    if (!file.exists) {
      continue;
    }
    MB_TRY_ASSIGN(auto credentials, file_credentials(environment, file, registry_host));
    if (credentials) {
      return credentials;
    }
  }
  return std::nullopt;
}

std::string login_file(const CredentialEnvironment& environment) {
  if (!environment.registry_auth_file.empty()) {
    return environment.registry_auth_file;
  }
  if (!environment.docker_config.empty()) {
    return environment.docker_config + "/config.json";
  }
  if (!environment.home.empty()) {
    return environment.home + "/.docker/config.json";
  }
  return {};
}

Result<void> store_credentials(const CredentialEnvironment& environment,
                               std::string_view registry_host, const Credentials& credentials) {
  const std::string path = login_file(environment);
  if (path.empty()) {
    return fail(Code::usage, "store credentials for " + std::string(registry_host) +
                                 ": no credentials file: set $HOME, $DOCKER_CONFIG or "
                                 "$REGISTRY_AUTH_FILE");
  }
  MB_TRY_ASSIGN(CredentialFile file, load_file(path));
  MB_TRY_ASSIGN(std::optional<std::string> helper, configured_helper(file, registry_host));
  const std::string key = credential_key(registry_host);
  Json& auths = file.json["auths"];
  if (auths.is_null()) {
    auths = Json::object();
  }

  if (helper) {
    const std::string program = std::string(k_helper_prefix) + *helper;
    nlohmann::json request = {{"ServerURL", key}};
    if (!credentials.identity_token.empty()) {
      request["Username"] = "<token>";
      request["Secret"] = credentials.identity_token;
    } else {
      request["Username"] = credentials.username;
      request["Secret"] = credentials.password;
    }
    std::string input;
    try {
      input = request.dump();
    } catch (const nlohmann::json::exception&) {
      return fail(Code::usage, "store credentials for " + std::string(registry_host) +
                                   ": the user name or secret is not valid UTF-8");
    }
    MB_TRY_ASSIGN(HelperOutput output, run_helper(environment, *helper, "store", input));
    if (output.exit_status != 0) {
      return fail(Error(Code::auth, helper_failure(program, "store", registry_host, output))
                      .wrap("credential helper configured in " + in_quotes(path)));
    }
    // Like docker/cli's native store: the file keeps an empty entry (so `logout` and tools
    // listing logins see the registry) and no secret that would shadow the helper's.
    bool changed = strip_secrets(auths, registry_host);
    if (!auths.contains(key)) {
      auths[key] = Json::object();
      changed = true;
    }
    if (changed || !file.exists) {
      MB_TRY(save_file(file));
    }
    return {};
  }

  strip_secrets(auths, registry_host);
  Json& entry = auths[key];
  if (!entry.is_object()) {
    entry = Json::object();
  }
  if (!credentials.username.empty() || !credentials.password.empty()) {
    entry["auth"] = oci::base64_encode(credentials.username + ":" + credentials.password);
  }
  if (!credentials.identity_token.empty()) {
    entry["identitytoken"] = credentials.identity_token;
  }
  return save_file(file);
}

Result<bool> erase_credentials(const CredentialEnvironment& environment,
                               std::string_view registry_host) {
  const std::string path = login_file(environment);
  if (path.empty()) {
    return false;
  }
  MB_TRY_ASSIGN(CredentialFile file, load_file(path));
  if (!file.exists) {
    return false;
  }
  bool removed = false;
  MB_TRY_ASSIGN(std::optional<std::string> helper, configured_helper(file, registry_host));
  if (helper) {
    const std::string program = std::string(k_helper_prefix) + *helper;
    MB_TRY_ASSIGN(HelperOutput output,
                  run_helper(environment, *helper, "erase", credential_key(registry_host)));
    if (output.exit_status == 0) {
      removed = true;
    } else if (!says_not_found(output)) {
      return fail(Error(Code::auth, helper_failure(program, "erase", registry_host, output))
                      .wrap("credential helper configured in " + in_quotes(path)));
    }
  }
  if (auto auths = file.json.find("auths"); auths != file.json.end()) {
    std::vector<std::string> keys;
    for (auto it = auths->begin(); it != auths->end(); ++it) {
      if (key_matches(it.key(), registry_host)) {
        keys.push_back(it.key());
      }
    }
    for (const std::string& key : keys) {
      auths->erase(key);
    }
    if (!keys.empty()) {
      removed = true;
      MB_TRY(save_file(file));
    }
  }
  return removed;
}

} // namespace minibuild::registry
