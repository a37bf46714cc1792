// Seccomp: the Docker/OCI profile format, compilation with libseccomp, installation in the child.
//
// The profile semantics follow Docker (profiles/seccomp in moby) and runc, so that a profile that
// works with `docker run --security-opt seccomp=FILE` works here: includes/excludes are decided
// against the native architecture, the capability set and the kernel version before any rule
// reaches libseccomp; unknown syscall names are skipped; rules whose action is the default action
// are no-ops (libseccomp refuses them with EACCES).

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/runtime/security.hpp>

#include <nlohmann/json.hpp>
#include <seccomp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace minibuild::runtime {

namespace {

using nlohmann::json;

struct NamedAction {
  std::string_view name;
  SeccompActionKind kind;
};

constexpr std::array k_actions{
    NamedAction{"SCMP_ACT_ALLOW", SeccompActionKind::allow},
    NamedAction{"SCMP_ACT_ERRNO", SeccompActionKind::errno_return},
    NamedAction{"SCMP_ACT_KILL", SeccompActionKind::kill_thread},
    NamedAction{"SCMP_ACT_KILL_THREAD", SeccompActionKind::kill_thread},
    NamedAction{"SCMP_ACT_KILL_PROCESS", SeccompActionKind::kill_process},
    NamedAction{"SCMP_ACT_TRAP", SeccompActionKind::trap},
    NamedAction{"SCMP_ACT_TRACE", SeccompActionKind::trace},
    NamedAction{"SCMP_ACT_LOG", SeccompActionKind::log},
};

struct NamedOp {
  std::string_view name;
  SeccompOp op;
  scmp_compare libseccomp_op;
};

constexpr std::array k_ops{
    NamedOp{"SCMP_CMP_NE", SeccompOp::not_equal, SCMP_CMP_NE},
    NamedOp{"SCMP_CMP_LT", SeccompOp::less_than, SCMP_CMP_LT},
    NamedOp{"SCMP_CMP_LE", SeccompOp::less_equal, SCMP_CMP_LE},
    NamedOp{"SCMP_CMP_EQ", SeccompOp::equal, SCMP_CMP_EQ},
    NamedOp{"SCMP_CMP_GE", SeccompOp::greater_equal, SCMP_CMP_GE},
    NamedOp{"SCMP_CMP_GT", SeccompOp::greater_than, SCMP_CMP_GT},
    NamedOp{"SCMP_CMP_MASKED_EQ", SeccompOp::masked_equal, SCMP_CMP_MASKED_EQ},
};

struct NamedArch {
  std::string_view name;   // as in profiles: SCMP_ARCH_*
  std::string_view native; // Docker's (Go) name, used by includes/excludes.arches
  std::string_view kernel; // uname -m style, accepted in includes/excludes too
  std::uint32_t token;
};

constexpr std::array k_arches{
    NamedArch{"SCMP_ARCH_X86", "x86", "i386", SCMP_ARCH_X86},
    NamedArch{"SCMP_ARCH_X86_64", "amd64", "x86_64", SCMP_ARCH_X86_64},
    NamedArch{"SCMP_ARCH_X32", "x32", "x32", SCMP_ARCH_X32},
    NamedArch{"SCMP_ARCH_ARM", "arm", "arm", SCMP_ARCH_ARM},
    NamedArch{"SCMP_ARCH_AARCH64", "arm64", "aarch64", SCMP_ARCH_AARCH64},
    NamedArch{"SCMP_ARCH_MIPS", "mips", "mips", SCMP_ARCH_MIPS},
    NamedArch{"SCMP_ARCH_MIPS64", "mips64", "mips64", SCMP_ARCH_MIPS64},
    NamedArch{"SCMP_ARCH_MIPS64N32", "mips64n32", "mips64n32", SCMP_ARCH_MIPS64N32},
    NamedArch{"SCMP_ARCH_MIPSEL", "mipsle", "mipsel", SCMP_ARCH_MIPSEL},
    NamedArch{"SCMP_ARCH_MIPSEL64", "mipsle64", "mipsel64", SCMP_ARCH_MIPSEL64},
    NamedArch{"SCMP_ARCH_MIPSEL64N32", "mipsle64n32", "mipsel64n32", SCMP_ARCH_MIPSEL64N32},
    NamedArch{"SCMP_ARCH_PPC", "ppc", "ppc", SCMP_ARCH_PPC},
    NamedArch{"SCMP_ARCH_PPC64", "ppc64", "ppc64", SCMP_ARCH_PPC64},
    NamedArch{"SCMP_ARCH_PPC64LE", "ppc64le", "ppc64le", SCMP_ARCH_PPC64LE},
    NamedArch{"SCMP_ARCH_S390", "s390", "s390", SCMP_ARCH_S390},
    NamedArch{"SCMP_ARCH_S390X", "s390x", "s390x", SCMP_ARCH_S390X},
    NamedArch{"SCMP_ARCH_PARISC", "parisc", "parisc", SCMP_ARCH_PARISC},
    NamedArch{"SCMP_ARCH_PARISC64", "parisc64", "parisc64", SCMP_ARCH_PARISC64},
    NamedArch{"SCMP_ARCH_RISCV64", "riscv64", "riscv64", SCMP_ARCH_RISCV64},
};

const NamedArch* find_arch(std::string_view name) {
  for (const auto& arch : k_arches) {
    if (arch.name == name) {
      return &arch;
    }
  }
  return nullptr;
}

const NamedArch* find_arch(std::uint32_t token) {
  for (const auto& arch : k_arches) {
    if (arch.token == token) {
      return &arch;
    }
  }
  return nullptr;
}

// The architectures whose syscalls a process of the native one can make (compat modes).
std::vector<std::uint32_t> compat_arches(std::uint32_t native) {
  switch (native) {
  case SCMP_ARCH_X86_64:
    return {SCMP_ARCH_X86, SCMP_ARCH_X32};
  case SCMP_ARCH_AARCH64:
    return {SCMP_ARCH_ARM};
  default:
    return {};
  }
}

Result<KernelVersion> parse_kernel_version(std::string_view text) {
  KernelVersion version;
  int* parts[] = {&version.major, &version.minor, &version.patch};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (std::size_t i = 0; i < 3; ++i) {
    const auto [next, ec] = std::from_chars(p, end, *parts[i]);
    if (ec != std::errc() || *parts[i] < 0) {
      if (i >= 2) {
        break; // "4.8" or "6.1-rc1": the patch level is optional
      }
      return fail(Code::usage, "malformed kernel version \"" + std::string(text) +
                                   "\" (expected MAJOR.MINOR[.PATCH])");
    }
    p = next;
    if (p == end || *p != '.') {
      if (i == 0) {
        return fail(Code::usage, "malformed kernel version \"" + std::string(text) +
                                     "\" (expected MAJOR.MINOR[.PATCH])");
      }
      break;
    }
    ++p;
  }
  return version;
}

// A reader over one JSON object that names the path of every value in its errors.
class Parser {
public:
  explicit Parser(std::string_view file_name) : m_file(file_name) {}

  tl::unexpected<Error> error(const std::string& path, const std::string& what) const {
    return fail(Code::usage, m_file + ": " + path + ": " + what);
  }

  Result<std::string> string(const json& value, const std::string& path) const {
    if (!value.is_string()) {
      return error(path, "expected a string, got " + std::string(value.type_name()));
    }
    return value.get<std::string>();
  }

  Result<std::uint64_t> unsigned_number(const json& value, const std::string& path) const {
    if (!value.is_number_unsigned()) {
      return error(path, "expected a non-negative integer, got " + value.dump());
    }
    return value.get<std::uint64_t>();
  }

  // An absent or null array is empty, as in Go's encoding/json.
  Result<std::vector<std::string>> strings(const json& object, const char* key,
                                           const std::string& path) const {
    std::vector<std::string> out;
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      return out;
    }
    if (!it->is_array()) {
      return error(path + "." + key, "expected an array, got " + std::string(it->type_name()));
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
      MB_TRY_ASSIGN(auto text, string((*it)[i], path + "." + key + "[" + std::to_string(i) + "]"));
      out.push_back(std::move(text));
    }
    return out;
  }

  Result<SeccompAction> action(const json& object, const char* action_key, const char* errno_key,
                               const std::string& path) const {
    const auto it = object.find(action_key);
    if (it == object.end()) {
      return error(path.empty() ? action_key : path + "." + action_key, "missing");
    }
    const std::string where = path.empty() ? action_key : path + "." + action_key;
    MB_TRY_ASSIGN(const std::string name, string(*it, where));
    if (name == "SCMP_ACT_NOTIFY") {
      return error(where, "SCMP_ACT_NOTIFY needs a seccomp listener, which minibuild does not "
                          "provide");
    }
    const auto found = std::find_if(k_actions.begin(), k_actions.end(),
                                    [&](const NamedAction& a) { return a.name == name; });
    if (found == k_actions.end()) {
      return error(where, "unknown action \"" + name + "\"");
    }
    SeccompAction result{found->kind, 0};
    if (result.kind == SeccompActionKind::errno_return || result.kind == SeccompActionKind::trace) {
      result.value = EPERM;
    }
    const auto ret = object.find(errno_key);
    if (ret != object.end() && !ret->is_null()) {
      const std::string ret_path = path.empty() ? errno_key : path + "." + errno_key;
      MB_TRY_ASSIGN(const auto value, unsigned_number(*ret, ret_path));
      if (value > 0xffff) {
        return error(ret_path, "out of range: " + std::to_string(value));
      }
      if (result.kind == SeccompActionKind::errno_return ||
          result.kind == SeccompActionKind::trace) {
        result.value = static_cast<std::uint32_t>(value);
      }
    }
    return result;
  }

  Result<SeccompArg> arg(const json& value, const std::string& path) const {
    if (!value.is_object()) {
      return error(path, "expected an object, got " + std::string(value.type_name()));
    }
    SeccompArg out;
    const auto index = value.find("index");
    if (index == value.end()) {
      return error(path + ".index", "missing");
    }
    MB_TRY_ASSIGN(const auto index_value, unsigned_number(*index, path + ".index"));
    if (index_value > 5) {
      return error(path + ".index",
                   "argument index " + std::to_string(index_value) + " out of range (0..5)");
    }
    out.index = static_cast<unsigned>(index_value);
    if (const auto v = value.find("value"); v != value.end() && !v->is_null()) {
      MB_TRY_ASSIGN(out.value, unsigned_number(*v, path + ".value"));
    }
    if (const auto v = value.find("valueTwo"); v != value.end() && !v->is_null()) {
      MB_TRY_ASSIGN(out.value_two, unsigned_number(*v, path + ".valueTwo"));
    }
    const auto op = value.find("op");
    if (op == value.end()) {
      return error(path + ".op", "missing");
    }
    MB_TRY_ASSIGN(const std::string op_name, string(*op, path + ".op"));
    const auto found = std::find_if(k_ops.begin(), k_ops.end(),
                                    [&](const NamedOp& o) { return o.name == op_name; });
    if (found == k_ops.end()) {
      return error(path + ".op", "unknown operator \"" + op_name + "\"");
    }
    out.op = found->op;
    return out;
  }

  Result<SeccompFilter> filter(const json& object, const char* key, const std::string& path) const {
    SeccompFilter out;
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      return out;
    }
    const std::string where = path + "." + key;
    if (!it->is_object()) {
      return error(where, "expected an object, got " + std::string(it->type_name()));
    }
    MB_TRY_ASSIGN(out.caps, strings(*it, "caps", where));
    MB_TRY_ASSIGN(out.arches, strings(*it, "arches", where));
    if (const auto k = it->find("minKernel"); k != it->end() && !k->is_null()) {
      MB_TRY_ASSIGN(const std::string text, string(*k, where + ".minKernel"));
      auto version = parse_kernel_version(text);
      if (!version) {
        return error(where + ".minKernel", version.error().message());
      }
      out.min_kernel = *version;
    }
    return out;
  }

  Result<SeccompRule> rule(const json& value, const std::string& path) const {
    if (!value.is_object()) {
      return error(path, "expected an object, got " + std::string(value.type_name()));
    }
    SeccompRule out;
    MB_TRY_ASSIGN(out.names, strings(value, "names", path));
    if (const auto name = value.find("name"); name != value.end() && !name->is_null()) {
      MB_TRY_ASSIGN(std::string single, string(*name, path + ".name"));
      if (!out.names.empty()) {
        return error(path, "both \"name\" and \"names\" are given; use one");
      }
      out.names.push_back(std::move(single));
    }
    MB_TRY_ASSIGN(out.action, action(value, "action", "errnoRet", path));
    if (const auto args = value.find("args"); args != value.end() && !args->is_null()) {
      if (!args->is_array()) {
        return error(path + ".args", "expected an array, got " + std::string(args->type_name()));
      }
      for (std::size_t i = 0; i < args->size(); ++i) {
        MB_TRY_ASSIGN(auto parsed, arg((*args)[i], path + ".args[" + std::to_string(i) + "]"));
        out.args.push_back(parsed);
      }
    }
    MB_TRY_ASSIGN(out.includes, filter(value, "includes", path));
    MB_TRY_ASSIGN(out.excludes, filter(value, "excludes", path));
    return out;
  }

  Result<std::string> arch(const json& value, const std::string& path) const {
    MB_TRY_ASSIGN(std::string name, string(value, path));
    if (find_arch(name) == nullptr) {
      return error(path, "unknown architecture \"" + name + "\"");
    }
    return name;
  }

  Result<SeccompProfile> profile(const json& root) const {
    if (!root.is_object()) {
      return fail(Code::usage,
                  m_file + ": expected a JSON object, got " + std::string(root.type_name()));
    }
    SeccompProfile out;
    if (root.find("defaultAction") == root.end()) {
      return error("defaultAction", "missing (to run without a filter, use seccomp=unconfined)");
    }
    MB_TRY_ASSIGN(out.default_action, action(root, "defaultAction", "defaultErrnoRet", ""));

    if (const auto it = root.find("architectures"); it != root.end() && !it->is_null()) {
      if (!it->is_array()) {
        return error("architectures", "expected an array, got " + std::string(it->type_name()));
      }
      for (std::size_t i = 0; i < it->size(); ++i) {
        MB_TRY_ASSIGN(auto name, arch((*it)[i], "architectures[" + std::to_string(i) + "]"));
        out.architectures.push_back(std::move(name));
      }
    }
    if (const auto it = root.find("archMap"); it != root.end() && !it->is_null()) {
      if (!it->is_array()) {
        return error("archMap", "expected an array, got " + std::string(it->type_name()));
      }
      for (std::size_t i = 0; i < it->size(); ++i) {
        const std::string path = "archMap[" + std::to_string(i) + "]";
        const json& entry = (*it)[i];
        if (!entry.is_object() || entry.find("architecture") == entry.end()) {
          return error(path, "expected an object with \"architecture\"");
        }
        SeccompArchMapEntry parsed;
        MB_TRY_ASSIGN(parsed.architecture, arch(entry["architecture"], path + ".architecture"));
        MB_TRY_ASSIGN(parsed.sub_architectures, strings(entry, "subArchitectures", path));
        for (std::size_t j = 0; j < parsed.sub_architectures.size(); ++j) {
          MB_TRY(arch(parsed.sub_architectures[j],
                      path + ".subArchitectures[" + std::to_string(j) + "]"));
        }
        out.arch_map.push_back(std::move(parsed));
      }
    }
    if (!out.architectures.empty() && !out.arch_map.empty()) {
      return fail(Code::usage, m_file + ": both \"architectures\" and \"archMap\" are given; "
                                        "use one");
    }
    if (const auto it = root.find("syscalls"); it != root.end() && !it->is_null()) {
      if (!it->is_array()) {
        return error("syscalls", "expected an array, got " + std::string(it->type_name()));
      }
      for (std::size_t i = 0; i < it->size(); ++i) {
        MB_TRY_ASSIGN(auto parsed, rule((*it)[i], "syscalls[" + std::to_string(i) + "]"));
        out.syscalls.push_back(std::move(parsed));
      }
    }
    return out;
  }

private:
  std::string m_file;
};

SourceRange position_of(std::string_view text, std::size_t byte, std::string_view file_name) {
  SourceRange range{std::string(file_name), 1, 1, 1};
  for (std::size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++range.line;
      range.column = 1;
    } else {
      ++range.column;
    }
  }
  range.end_line = range.line;
  return range;
}

std::uint32_t libseccomp_action(const SeccompAction& action) {
  switch (action.kind) {
  case SeccompActionKind::allow:
    return SCMP_ACT_ALLOW;
  case SeccompActionKind::errno_return:
    return SCMP_ACT_ERRNO(action.value);
  case SeccompActionKind::kill_thread:
    return SCMP_ACT_KILL_THREAD;
  case SeccompActionKind::kill_process:
    return SCMP_ACT_KILL_PROCESS;
  case SeccompActionKind::trap:
    return SCMP_ACT_TRAP;
  case SeccompActionKind::trace:
    return SCMP_ACT_TRACE(action.value);
  case SeccompActionKind::log:
    return SCMP_ACT_LOG;
  }
  return SCMP_ACT_KILL_PROCESS; // unreachable: the switch is exhaustive
}

scmp_compare libseccomp_op(SeccompOp op) {
  for (const auto& named : k_ops) {
    if (named.op == op) {
      return named.libseccomp_op;
    }
  }
  return SCMP_CMP_EQ; // unreachable: k_ops covers every SeccompOp
}

bool arch_listed(const std::vector<std::string>& arches, const NamedArch* native) {
  return native != nullptr && std::any_of(arches.begin(), arches.end(), [&](const std::string& a) {
           return a == native->native || a == native->kernel;
         });
}

bool has_capability(const std::string& name, CapabilitySet caps) {
  const auto cap = capability_from_name(name);
  return cap && (caps & capability_bit(*cap)) != 0;
}

// Docker's rule selection (moby profiles/seccomp, setupSeccomp): any exclude that holds drops the
// rule, then every include must hold.
bool rule_applies(const SeccompRule& rule, const NamedArch* native, CapabilitySet caps,
                  const KernelVersion& kernel) {
  const auto& ex = rule.excludes;
  if (arch_listed(ex.arches, native) ||
      std::any_of(ex.caps.begin(), ex.caps.end(),
                  [&](const std::string& c) { return has_capability(c, caps); }) ||
      (ex.min_kernel && kernel >= *ex.min_kernel)) {
    return false;
  }
  const auto& in = rule.includes;
  if (!in.arches.empty() && !arch_listed(in.arches, native)) {
    return false;
  }
  if (!std::all_of(in.caps.begin(), in.caps.end(),
                   [&](const std::string& c) { return has_capability(c, caps); })) {
    return false;
  }
  return !(in.min_kernel && kernel < *in.min_kernel);
}

struct FilterContext {
  scmp_filter_ctx ctx = nullptr;
  FilterContext(const FilterContext&) = delete;
  FilterContext& operator=(const FilterContext&) = delete;
  explicit FilterContext(scmp_filter_ctx c) : ctx(c) {}
  ~FilterContext() {
    if (ctx != nullptr) {
      seccomp_release(ctx);
    }
  }
};

Error libseccomp_error(int rc, std::string what) {
  Error error = Error::from_errno(-rc, "libseccomp: " + what);
  return std::move(error).with_code(Code::sandbox);
}

} // namespace

Result<KernelVersion> running_kernel_version() {
  utsname names{};
  if (::uname(&names) != 0) {
    return fail_errno(errno, "uname");
  }
  auto version = parse_kernel_version(names.release);
  if (!version) {
    return fail(std::move(version).error().wrap("uname").with_code(Code::internal));
  }
  return version;
}

Result<SeccompProfile> parse_seccomp_profile(std::string_view text, std::string_view file_name) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // nlohmann's message repeats the position as "line L, column C"; keep only the cause.
    std::string what = e.what();
    if (const auto colon = what.rfind(": "); colon != std::string::npos) {
      what = what.substr(colon + 2);
    }
    return fail(
        Error(Code::usage, "invalid JSON: " + what).at(position_of(text, e.byte, file_name)));
  }
  return Parser(file_name).profile(root);
}

Result<SeccompProfile> default_seccomp_profile() {
  return parse_seccomp_profile(default_seccomp_profile_json(), "seccomp-default.json");
}

Result<SeccompProgram> compile_seccomp(const SeccompProfile& profile,
                                       CapabilitySet effective_caps) {
  MB_TRY_ASSIGN(const KernelVersion kernel, running_kernel_version());
  return compile_seccomp(profile, effective_caps, kernel);
}

Result<SeccompProgram> compile_seccomp(const SeccompProfile& profile, CapabilitySet effective_caps,
                                       const KernelVersion& kernel) {
  const std::uint32_t default_action = libseccomp_action(profile.default_action);
  FilterContext filter(seccomp_init(default_action));
  if (filter.ctx == nullptr) {
    return fail(Code::sandbox, "libseccomp: seccomp_init failed");
  }

  // The filter always covers the native architecture (seccomp_init adds it); the profile's other
  // architectures are added when they are compat modes of the native one. A foreign architecture
  // can never reach this kernel's filter, so it is not worth the instructions.
  const std::uint32_t native_token = seccomp_arch_native();
  const NamedArch* native = find_arch(native_token);
  std::vector<std::string> wanted = profile.architectures;
  for (const auto& entry : profile.arch_map) {
    if (native != nullptr && entry.architecture == native->name) {
      wanted.push_back(entry.architecture);
      wanted.insert(wanted.end(), entry.sub_architectures.begin(), entry.sub_architectures.end());
    }
  }
  const auto compat = compat_arches(native_token);
  for (const auto& name : wanted) {
    const NamedArch* arch = find_arch(name);
    if (arch == nullptr || std::find(compat.begin(), compat.end(), arch->token) == compat.end()) {
      continue;
    }
    if (int rc = seccomp_arch_add(filter.ctx, arch->token); rc != 0 && rc != -EEXIST) {
      return fail(libseccomp_error(rc, "add architecture " + name));
    }
  }

  SeccompProgram program;
  for (const auto& rule : profile.syscalls) {
    if (!rule_applies(rule, native, effective_caps, kernel)) {
      continue;
    }
    const std::uint32_t action = libseccomp_action(rule.action);
    if (action == default_action) {
      continue;
    }
    std::vector<scmp_arg_cmp> conditions;
    bool same_arg_twice = false;
    for (const auto& arg : rule.args) {
      same_arg_twice =
          same_arg_twice || std::any_of(conditions.begin(), conditions.end(),
                                        [&](const scmp_arg_cmp& c) { return c.arg == arg.index; });
      conditions.push_back(
          scmp_arg_cmp{arg.index, libseccomp_op(arg.op), arg.value, arg.value_two});
    }
    for (const auto& name : rule.names) {
      const int number = seccomp_syscall_resolve_name(name.c_str());
      if (number == __NR_SCMP_ERROR) {
        if (std::find(program.unknown_syscalls.begin(), program.unknown_syscalls.end(), name) ==
            program.unknown_syscalls.end()) {
          program.unknown_syscalls.push_back(name);
        }
        continue;
      }
      // libseccomp refuses two comparisons of one argument in a rule (EINVAL); like runc, such
      // a rule becomes one rule per comparison.
      std::vector<std::vector<scmp_arg_cmp>> rule_sets;
      if (same_arg_twice) {
        for (const auto& c : conditions) {
          rule_sets.push_back({c});
        }
      } else {
        rule_sets.push_back(conditions);
      }
      for (const auto& set : rule_sets) {
        const int rc = seccomp_rule_add_array(filter.ctx, action, number,
                                              static_cast<unsigned>(set.size()), set.data());
        if (rc != 0) {
          return fail(libseccomp_error(rc, "add rule for " + name));
        }
        ++program.rule_count;
      }
    }
  }

  // Export through a memfd: libseccomp writes the BPF to a descriptor, and a memfd needs no
  // temporary file and no pipe-capacity limit.
  UniqueFd memory(::memfd_create("minibuild-seccomp", MFD_CLOEXEC));
  if (!memory) {
    return fail_errno(errno, "memfd_create for the seccomp filter");
  }
  if (int rc = seccomp_export_bpf(filter.ctx, memory.get()); rc != 0) {
    return fail(libseccomp_error(rc, "export BPF"));
  }
  const off_t size = ::lseek(memory.get(), 0, SEEK_END);
  if (size < 0 || ::lseek(memory.get(), 0, SEEK_SET) != 0) {
    return fail_errno(errno, "seek in the seccomp filter memfd");
  }
  if (size == 0 || static_cast<std::size_t>(size) % sizeof(sock_filter) != 0) {
    return fail(Code::internal, "libseccomp exported a filter of " + std::to_string(size) +
                                    " bytes, not a whole number of instructions");
  }
  program.instructions.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
  auto* bytes = reinterpret_cast<char*>(program.instructions.data());
  std::size_t done = 0;
  while (done < static_cast<std::size_t>(size)) {
    const ssize_t n = ::read(memory.get(), bytes + done, static_cast<std::size_t>(size) - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return fail_errno(n < 0 ? errno : EIO, "read the seccomp filter memfd");
    }
    done += static_cast<std::size_t>(n);
  }
  return program;
}

std::string libseccomp_version() {
  const scmp_version* v = seccomp_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->micro);
}

int install_seccomp(const SeccompProgram& program) noexcept {
  if (program.instructions.empty() || program.instructions.size() > 0xffff) {
    return EINVAL;
  }
  // Without no_new_privs an unprivileged process may not install a filter; minibuild sets it in
  // every case (docs/security.md), so setuid binaries cannot regain what the sandbox dropped.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return errno;
  }
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.instructions.size());
  prog.filter = const_cast<sock_filter*>(program.instructions.data());
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0) {
    return 0;
  }
  if (errno != ENOSYS) {
    return errno;
  }
  // Kernels 3.5..3.16 have seccomp filters but not the seccomp(2) syscall.
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0 ? 0 : errno;
}

} // namespace minibuild::runtime
