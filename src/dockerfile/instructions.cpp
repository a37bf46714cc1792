// Typed instructions from syntax-tree nodes. Rules and messages follow BuildKit's
// frontend/dockerfile/instructions (parse.go, bflag.go, commands_runmount.go, ...) so that a
// Dockerfile BuildKit accepts is accepted here, and a rejected one is rejected with a message a
// BuildKit user recognises. Where minibuild is stricter (lexical checks of ARG names, EXPOSE
// ports, STOPSIGNAL, --chmod at parse time rather than at dispatch) docs/dockerfile.md says so.
#include <minibuild/dockerfile/instructions.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <utility>

namespace minibuild::dockerfile {

namespace {

constexpr std::array<std::string_view, 18> k_instruction_names = {
    "FROM",    "RUN", "CMD",     "LABEL",      "MAINTAINER",  "EXPOSE",
    "ENV",     "ADD", "COPY",    "ENTRYPOINT", "VOLUME",      "USER",
    "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"};

static_assert(std::variant_size_v<Instruction::Payload> == k_instruction_names.size(),
              "one payload alternative per InstructionKind");

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string to_upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return to_lower(a) == to_lower(b);
}

std::string_view trim(std::string_view text) {
  const auto* space = " \t\r\n\v\f";
  const auto begin = text.find_first_not_of(space);
  if (begin == std::string_view::npos) {
    return {};
  }
  const auto end = text.find_last_not_of(space);
  return text.substr(begin, end - begin + 1);
}

bool has_variable(std::string_view word) {
  return word.find('$') != std::string_view::npos;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    previous[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// --- errors -----------------------------------------------------------------------------------

// Where in the node a word starts. The AST keeps the trimmed, joined text but not the
// indentation or the physical line breaks, so a column is only exact for one-line
// instructions; otherwise the error points at the instruction (column 1).
int column_of(const Node& node, std::string_view needle) {
  if (needle.empty() || (node.end_line != 0 && node.end_line != node.start_line)) {
    return 1;
  }
  const auto pos = node.original.find(needle);
  return pos == std::string::npos ? 1 : static_cast<int>(pos) + 1;
}

SourceRange range_of(const Node& node, std::string_view file, int column) {
  return SourceRange{std::string(file), node.start_line, column,
                     node.end_line > 0 ? node.end_line : node.start_line};
}

// Errors are built with the instruction name as context, so `what()` reads
// "Dockerfile:3:6: COPY: unknown flag: --frm".
class ErrorSite {
public:
  ErrorSite(const Node& node, std::string_view file, std::string_view name)
      : m_node(node), m_file(file), m_name(name) {}

  tl::unexpected<Error> fail(std::string message, std::string_view near = {}) const {
    Error error(Code::dockerfile, std::move(message));
    error.wrap(std::string(m_name));
    error.at(range_of(m_node, m_file, column_of(m_node, near)));
    return tl::unexpected<Error>(std::move(error));
  }

  // For messages that already name the instruction ("FROM requires ...").
  tl::unexpected<Error> fail_bare(std::string message, std::string_view near = {}) const {
    Error error(Code::dockerfile, std::move(message));
    error.at(range_of(m_node, m_file, column_of(m_node, near)));
    return tl::unexpected<Error>(std::move(error));
  }

  void warn(std::vector<Warning>* warnings, std::string message) const {
    if (warnings != nullptr) {
      warnings->push_back({std::move(message), range_of(m_node, m_file, 1)});
    }
  }

  std::string_view name() const { return m_name; }
  const Node& node() const { return m_node; }
  std::string_view file() const { return m_file; }

private:
  const Node& m_node;
  std::string_view m_file;
  std::string_view m_name;
};

std::string with_suggestion(std::string message, std::string_view word,
                            const std::vector<std::string>& candidates,
                            std::string_view prefix = {}) {
  if (auto match = suggest_nearest(word, candidates)) {
    message += " (did you mean ";
    message += prefix;
    message += *match;
    message += "?)";
  }
  return message;
}

// --- flags (BuildKit bflag.go) ----------------------------------------------------------------

enum class FlagType { boolean, string, strings };

struct FlagSpec {
  std::string_view name;
  FlagType type;
};

class Flags {
public:
  bool used(std::string_view name) const { return m_used.count(std::string(name)) != 0; }
  std::string value(std::string_view name, std::string fallback = {}) const {
    auto it = m_values.find(std::string(name));
    return it == m_values.end() ? fallback : it->second;
  }
  bool boolean(std::string_view name) const { return value(name, "false") == "true"; }
  std::vector<std::string> values(std::string_view name) const {
    auto it = m_lists.find(std::string(name));
    return it == m_lists.end() ? std::vector<std::string>{} : it->second;
  }

  std::set<std::string> m_used;
  std::map<std::string, std::string> m_values;
  std::map<std::string, std::vector<std::string>> m_lists;
};

// bflag semantics: `--name=value` or, for booleans only, bare `--name`; booleans take
// true/false in any case; only repeatable (strings) flags may appear twice.
Result<Flags> parse_flags(const ErrorSite& site, const std::vector<FlagSpec>& specs) {
  Flags flags;
  for (const auto& word : site.node().flags) {
    if (word.rfind("--", 0) != 0) {
      return site.fail("arg should start with -- : " + word, word);
    }
    if (word == "--") {
      break;
    }
    const std::string_view body = std::string_view(word).substr(2);
    const auto eq = body.find('=');
    const std::string name(body.substr(0, eq));
    const bool has_value = eq != std::string_view::npos;
    const std::string value = has_value ? std::string(body.substr(eq + 1)) : std::string();

    const auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      std::vector<std::string> names;
      for (const auto& s : specs) {
        names.emplace_back(s.name);
      }
      return site.fail(with_suggestion("unknown flag: --" + name, name, names, "--"), word);
    }
    if (flags.used(name) && spec->type != FlagType::strings) {
      return site.fail("duplicate flag specified: --" + name, word);
    }
    flags.m_used.insert(name);
    switch (spec->type) {
    case FlagType::boolean: {
      if (has_value && value.empty()) {
        return site.fail("missing a value on flag: --" + name, word);
      }
      const auto lower = to_lower(value);
      if (lower.empty()) {
        flags.m_values[name] = "true";
      } else if (lower == "true" || lower == "false") {
        flags.m_values[name] = lower;
      } else {
        return site.fail("expecting boolean value for flag --" + name + ", not: " + value, word);
      }
      break;
    }
    case FlagType::string:
      if (!has_value) {
        return site.fail("missing a value on flag: --" + name, word);
      }
      flags.m_values[name] = value;
      break;
    case FlagType::strings:
      if (!has_value) {
        return site.fail("missing a value on flag: --" + name, word);
      }
      flags.m_lists[name].push_back(value);
      break;
    }
  }
  return flags;
}

// --- lexical checks shared by parse and expand ------------------------------------------------

// ARG names must be usable as `$NAME`: the shell lexer reads [A-Za-z0-9_] after '$'.
bool valid_arg_name(std::string_view name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) != 0 || name[0] == '_')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

bool valid_stage_name(std::string_view name) {
  // ^[a-z][a-z0-9-_.]*$, BuildKit's validStageName
  if (name.empty() || name[0] < 'a' || name[0] > 'z') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text, int base, std::uint64_t max) {
  if (text.empty()) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  for (char c : text) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else {
      return std::nullopt;
    }
    if (digit >= base) {
      return std::nullopt;
    }
    if (value > (max - static_cast<std::uint64_t>(digit)) / static_cast<std::uint64_t>(base)) {
      return std::nullopt;
    }
    value = value * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(digit);
  }
  return value;
}

// `80`, `80/tcp`, `8000-8010/udp` (nat.ParsePortSpec without the host parts EXPOSE never
// means). Returns an error text, or empty when valid.
std::string check_port(std::string_view spec) {
  std::string_view ports = spec;
  const auto slash = spec.find('/');
  if (slash != std::string_view::npos) {
    ports = spec.substr(0, slash);
    const auto proto = to_lower(spec.substr(slash + 1));
    if (proto != "tcp" && proto != "udp" && proto != "sctp") {
      return "invalid proto: " + std::string(spec.substr(slash + 1));
    }
  }
  const auto dash = ports.find('-');
  const auto first = parse_unsigned(ports.substr(0, dash), 10, 65535);
  if (!first) {
    return "invalid containerPort: " + std::string(ports);
  }
  if (dash != std::string_view::npos) {
    const auto last = parse_unsigned(ports.substr(dash + 1), 10, 65535);
    if (!last) {
      return "invalid containerPort: " + std::string(ports);
    }
    if (*last < *first) {
      return "invalid range specified: " + std::string(ports);
    }
  }
  return {};
}

bool valid_signal(std::string_view raw) {
  if (all_digits(raw)) {
    const auto number = parse_unsigned(raw, 10, std::numeric_limits<std::int32_t>::max());
    return number && *number > 0;
  }
  auto name = to_upper(raw);
  if (name.rfind("SIG", 0) == 0) {
    name = name.substr(3);
  }
  static constexpr std::array<std::string_view, 35> k_names = {
      "ABRT",   "ALRM",   "BUS",  "CHLD", "CLD",    "CONT",  "FPE",  "HUP",  "ILL",
      "INT",    "IO",     "IOT",  "KILL", "PIPE",   "POLL",  "PROF", "PWR",  "QUIT",
      "SEGV",   "STKFLT", "STOP", "SYS",  "TERM",   "TRAP",  "TSTP", "TTIN", "TTOU",
      "UNUSED", "URG",    "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ"};
  if (std::find(k_names.begin(), k_names.end(), name) != k_names.end()) {
    return true;
  }
  // Real-time signals: RTMIN, RTMIN+1..RTMIN+15, RTMAX-14..RTMAX-1, RTMAX.
  for (std::string_view base : {"RTMIN", "RTMAX"}) {
    if (name == base) {
      return true;
    }
    if (name.rfind(base, 0) == 0 && name.size() > base.size() + 1) {
      const char sign = name[base.size()];
      const auto offset = parse_unsigned(std::string_view(name).substr(base.size() + 1), 10, 15);
      if (offset && *offset >= 1 &&
          ((base == "RTMIN" && sign == '+') || (base == "RTMAX" && sign == '-' && *offset <= 14))) {
        return true;
      }
    }
  }
  return false;
}

// Octal up to 07777 (BuildKit), or a symbolic mode such as `u+x,go-w` (chmod(1) syntax, which
// BuildKit accepts since Dockerfile 1.14).
bool valid_chmod(std::string_view mode) {
  if (all_digits(mode)) {
    const auto value = parse_unsigned(mode, 8, 07777);
    return value.has_value();
  }
  std::size_t pos = 0;
  while (true) {
    while (pos < mode.size() && std::string_view("ugoa").find(mode[pos]) != std::string::npos) {
      ++pos;
    }
    if (pos >= mode.size() || std::string_view("+-=").find(mode[pos]) == std::string::npos) {
      return false;
    }
    while (pos < mode.size() && std::string_view("+-=").find(mode[pos]) != std::string::npos) {
      ++pos;
      while (pos < mode.size() &&
             std::string_view("rwxXstugo").find(mode[pos]) != std::string::npos) {
        ++pos;
      }
    }
    if (pos == mode.size()) {
      return true;
    }
    if (mode[pos] != ',') {
      return false;
    }
    ++pos;
  }
}

std::string check_checksum(std::string_view digest) {
  const auto colon = digest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return "invalid checksum digest format";
  }
  const auto algorithm = digest.substr(0, colon);
  const auto hex = digest.substr(colon + 1);
  std::size_t length = 0;
  if (algorithm == "sha256") {
    length = 64;
  } else if (algorithm == "sha384") {
    length = 96;
  } else if (algorithm == "sha512") {
    length = 128;
  } else {
    return "unsupported digest algorithm";
  }
  if (hex.size() != length || !std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return "invalid checksum digest length or characters";
  }
  return {};
}

std::string check_user(std::string_view user) {
  const auto colon = user.find(':');
  if (trim(user.substr(0, colon)).empty()) {
    return "USER requires a user name or uid before ':'";
  }
  if (colon != std::string_view::npos && user.find(':', colon + 1) != std::string_view::npos) {
    return "USER takes user[:group], not " + std::string(user);
  }
  return {};
}

// A word such as `<<EOF`, `<<-"EOF"`, `3<<'EOF'`: BuildKit's heredoc pattern
// ^(\d*)<<(-?)\s*([^<]*)$. Returns the delimiter with quotes removed.
std::optional<std::string> heredoc_name(std::string_view word) {
  std::size_t pos = 0;
  while (pos < word.size() && std::isdigit(static_cast<unsigned char>(word[pos])) != 0) {
    ++pos;
  }
  if (word.substr(pos, 2) != "<<") {
    return std::nullopt;
  }
  pos += 2;
  if (pos < word.size() && word[pos] == '-') {
    ++pos;
  }
  while (pos < word.size() && std::isspace(static_cast<unsigned char>(word[pos])) != 0) {
    ++pos;
  }
  const auto rest = word.substr(pos);
  if (rest.empty() || rest.find('<') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string name;
  for (char c : rest) {
    if (c != '"' && c != '\'') {
      name += c;
    }
  }
  return name;
}

// --- RUN --mount (BuildKit commands_runmount.go) ---------------------------------------------

using Expander = std::function<Result<std::string>(std::string_view)>;

Result<std::vector<std::string>> split_csv(std::string_view spec) {
  // encoding/csv field rules, as tonistiigi/go-csvvalue applies them to one record.
  std::vector<std::string> fields;
  std::size_t pos = 0;
  while (true) {
    std::string field;
    if (pos < spec.size() && spec[pos] == '"') {
      ++pos;
      while (true) {
        if (pos >= spec.size()) {
          return fail(Code::dockerfile,
                      "failed to parse csv mounts: extraneous or missing \" in quoted-field");
        }
        if (spec[pos] == '"') {
          if (pos + 1 < spec.size() && spec[pos + 1] == '"') {
            field += '"';
            pos += 2;
            continue;
          }
          ++pos;
          break;
        }
        field += spec[pos++];
      }
      if (pos < spec.size() && spec[pos] != ',') {
        return fail(Code::dockerfile,
                    "failed to parse csv mounts: extraneous or missing \" in quoted-field");
      }
    } else {
      while (pos < spec.size() && spec[pos] != ',') {
        if (spec[pos] == '"') {
          return fail(Code::dockerfile, "failed to parse csv mounts: bare \" in non-quoted-field");
        }
        field += spec[pos++];
      }
    }
    fields.push_back(std::move(field));
    if (pos >= spec.size()) {
      return fields;
    }
    ++pos; // the comma
  }
}

std::optional<bool> parse_go_bool(std::string_view text) {
  for (std::string_view yes : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (text == yes) {
      return true;
    }
  }
  for (std::string_view no : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (text == no) {
      return false;
    }
  }
  return std::nullopt;
}

// docker/go-units RAMInBytes: `64m`, `1.5g`, `100`, `2 GiB`; binary multipliers.
std::optional<std::int64_t> parse_ram_size(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[pos])) != 0 || text[pos] == '.')) {
    ++pos;
  }
  const auto number = text.substr(0, pos);
  if (number.empty() || !std::isdigit(static_cast<unsigned char>(number[0])) ||
      number.back() == '.') {
    return std::nullopt;
  }
  double value = 0;
  double scale = 0;
  for (char c : number) {
    if (c == '.') {
      if (scale != 0) {
        return std::nullopt;
      }
      scale = 1;
      continue;
    }
    if (scale == 0) {
      value = value * 10 + (c - '0');
    } else {
      scale /= 10;
      value += (c - '0') * scale;
    }
  }
  auto suffix = to_lower(text.substr(pos));
  if (!suffix.empty() && suffix[0] == ' ') {
    suffix.erase(0, 1);
  }
  double multiplier = 1;
  if (!suffix.empty()) {
    const auto unit = std::string_view("kmgtp").find(suffix[0]);
    if (unit != std::string_view::npos) {
      for (std::size_t i = 0; i <= unit; ++i) {
        multiplier *= 1024;
      }
      suffix.erase(0, 1);
    }
    if (!suffix.empty() && suffix[0] == 'i') {
      suffix.erase(0, 1);
    }
    if (!suffix.empty() && suffix[0] == 'b') {
      suffix.erase(0, 1);
    }
    if (!suffix.empty()) {
      return std::nullopt;
    }
  }
  const double bytes = value * multiplier;
  if (bytes > static_cast<double>(std::numeric_limits<std::int64_t>::max() / 2)) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(bytes);
}

Result<RunMount> parse_mount(std::string_view spec, const Expander* expand) {
  MB_TRY_ASSIGN(auto fields, split_csv(spec));
  RunMount mount;
  mount.spec = std::string(spec);
  bool read_only_auto = true;
  bool type_known = true;
  bool saw_required = false;
  bool saw_size = false;
  const std::vector<std::string> all_keys = {
      "type",        "from", "source", "target",    "readonly", "id",  "sharing",
      "required",    "size", "mode",   "uid",       "gid",      "src", "dst",
      "destination", "ro",   "rw",     "readwrite", "env"};

  for (const auto& field : fields) {
    const auto eq = field.find('=');
    const auto key = to_lower(std::string_view(field).substr(0, eq));
    if (eq == std::string::npos) {
      if (key == "readonly" || key == "ro") {
        mount.read_only = true;
        read_only_auto = false;
      } else if (key == "readwrite" || key == "rw") {
        mount.read_only = false;
        read_only_auto = false;
      } else if (key == "required") {
        mount.required = true;
        saw_required = true;
      } else {
        return fail(Code::dockerfile, "invalid field '" + field + "' must be a key=value pair");
      }
      continue;
    }
    std::string value = field.substr(eq + 1);
    if (expand != nullptr) {
      MB_TRY_ASSIGN(value, (*expand)(value));
    } else if (has_variable(value)) {
      // BuildKit evaluates mount values only once the stage's variables are known, and refuses
      // variables in `from=` altogether (the stage graph must be known before expansion).
      if (key == "from" && value.find('$') != value.size() - 1) {
        return fail(Code::dockerfile,
                    "'from' doesn't support variable expansion, define alias stage instead");
      }
      mount.resolved = false;
      if (key == "type") {
        type_known = false;
      } else if (key == "source" || key == "src") {
        mount.source = value;
      } else if (key == "target" || key == "dst" || key == "destination") {
        mount.target = value;
      } else if (key == "id") {
        mount.id = value;
      } else if (key == "env") {
        mount.env = value;
      }
      continue;
    }

    if (key == "type") {
      const auto type = to_lower(value);
      static const std::vector<std::string> k_types = {"bind", "cache", "tmpfs", "secret", "ssh"};
      const auto it = std::find(k_types.begin(), k_types.end(), type);
      if (it == k_types.end()) {
        return fail(Code::dockerfile,
                    with_suggestion("unsupported mount type \"" + value + "\"", value, k_types));
      }
      mount.type = static_cast<MountType>(it - k_types.begin());
    } else if (key == "from") {
      mount.from = value;
    } else if (key == "source" || key == "src") {
      mount.source = value;
    } else if (key == "target" || key == "dst" || key == "destination") {
      mount.target = value;
    } else if (key == "readonly" || key == "ro" || key == "readwrite" || key == "rw") {
      const auto flag = parse_go_bool(value);
      if (!flag) {
        return fail(Code::dockerfile, "invalid value for " + key + ": " + value);
      }
      mount.read_only = (key == "readonly" || key == "ro") ? *flag : !*flag;
      read_only_auto = false;
    } else if (key == "required") {
      const auto flag = parse_go_bool(value);
      if (!flag) {
        return fail(Code::dockerfile, "invalid value for " + key + ": " + value);
      }
      mount.required = *flag;
      saw_required = true;
    } else if (key == "size") {
      const auto size = parse_ram_size(value);
      if (!size) {
        return fail(Code::dockerfile, "invalid value for " + key + ": " + value);
      }
      mount.size = *size;
      saw_size = true;
    } else if (key == "id") {
      mount.id = value;
    } else if (key == "sharing") {
      const auto sharing = to_lower(value);
      static const std::vector<std::string> k_modes = {"shared", "private", "locked"};
      const auto it = std::find(k_modes.begin(), k_modes.end(), sharing);
      if (it == k_modes.end()) {
        return fail(Code::dockerfile,
                    with_suggestion("unsupported sharing value \"" + value + "\"", value, k_modes));
      }
      mount.sharing = static_cast<MountSharing>(it - k_modes.begin());
    } else if (key == "mode" || key == "uid" || key == "gid") {
      const auto number =
          parse_unsigned(value, key == "mode" ? 8 : 10, std::numeric_limits<std::uint32_t>::max());
      if (!number) {
        return fail(Code::dockerfile, "invalid value " + value + " for " + key);
      }
      auto& slot = key == "mode" ? mount.mode : key == "uid" ? mount.uid : mount.gid;
      slot = static_cast<std::uint32_t>(*number);
    } else if (key == "env") {
      mount.env = value;
    } else {
      return fail(
          Code::dockerfile,
          with_suggestion("unexpected key '" + key + "' in '" + field + "'", key, all_keys));
    }
  }

  if (!type_known) {
    return mount; // checked again once expand_instruction knows the type
  }
  // BuildKit checks `required` and `size` against the type seen so far, which makes the order
  // of keys matter; minibuild checks them once the whole spec is read.
  const auto type_name = std::string(mount_type_name(mount.type));
  if (saw_required && mount.type != MountType::secret && mount.type != MountType::ssh) {
    return fail(Code::dockerfile, "unexpected key 'required' for mount type '" + type_name + "'");
  }
  if (saw_size && mount.type != MountType::tmpfs) {
    return fail(Code::dockerfile, "unexpected key 'size' for mount type '" + type_name + "'");
  }
  const bool file_info_allowed = mount.type == MountType::secret || mount.type == MountType::ssh ||
                                 mount.type == MountType::cache;
  if (!file_info_allowed) {
    if (mount.mode) {
      return fail(Code::dockerfile, "mode not allowed for \"" + type_name + "\" type mounts");
    }
    if (mount.uid) {
      return fail(Code::dockerfile, "uid not allowed for \"" + type_name + "\" type mounts");
    }
    if (mount.gid) {
      return fail(Code::dockerfile, "gid not allowed for \"" + type_name + "\" type mounts");
    }
  }
  if (read_only_auto) {
    mount.read_only = !(mount.type == MountType::cache || mount.type == MountType::tmpfs);
  }
  if (mount.type == MountType::secret) {
    if (!mount.from.empty()) {
      return fail(Code::dockerfile, "secret mount should not have a from");
    }
    if (mount.sharing) {
      return fail(Code::dockerfile, "secret mount should not define sharing");
    }
    if (mount.source.empty() && mount.target.empty() && mount.id.empty()) {
      return fail(Code::dockerfile, "invalid secret mount. one of source, target required");
    }
    if (!mount.source.empty() && !mount.id.empty()) {
      return fail(Code::dockerfile, "both source and id can't be set");
    }
  }
  if (mount.sharing && mount.type != MountType::cache) {
    return fail(Code::dockerfile, "invalid cache sharing set for " + type_name + " mount");
  }
  return mount;
}

// --- per-instruction conversion ---------------------------------------------------------------

using Warnings = std::vector<Warning>*;

// BuildKit's parseShellDependentCommand + handleJSONArgs. An empty ENTRYPOINT (BuildKit's
// emptyAsNil) and an empty CMD both come out as no arguments.
CommandLine command_line(const Node& node) {
  CommandLine line;
  line.shell_form = !node.json_form;
  line.heredocs = node.heredocs;
  if (node.args.empty()) {
    return line;
  }
  if (node.json_form) {
    line.args = node.args;
  } else {
    // Shell form is one argument already; joining is what BuildKit's handleJSONArgs does for
    // any split it might receive.
    std::string joined;
    for (std::size_t i = 0; i < node.args.size(); ++i) {
      joined += (i == 0 ? "" : " ") + node.args[i];
    }
    line.args = {joined};
  }
  return line;
}

Result<std::vector<KeyValue>> key_values(const ErrorSite& site) {
  const auto& args = site.node().args;
  const std::string name(site.name());
  if (args.empty()) {
    return site.fail_bare(name + " requires at least one argument");
  }
  if (args.size() % 3 != 0) {
    return site.fail_bare("Bad input to " + name + ", too many arguments");
  }
  std::vector<KeyValue> pairs;
  for (std::size_t i = 0; i < args.size(); i += 3) {
    if (args[i].empty()) {
      return site.fail_bare(name + " names can not be blank");
    }
    pairs.push_back({args[i], args[i + 1], args[i + 2].empty()});
  }
  return pairs;
}

void warn_legacy(const ErrorSite& site, const std::vector<KeyValue>& pairs, Warnings warnings) {
  for (const auto& pair : pairs) {
    if (pair.legacy) {
      const std::string name(site.name());
      site.warn(warnings, "LegacyKeyValueFormat: \"" + name +
                              " key=value\" should be used instead of legacy \"" + name +
                              " key value\" format");
      return;
    }
  }
}

Result<void> require_exactly_one(const ErrorSite& site) {
  if (site.node().args.size() != 1) {
    return site.fail_bare(std::string(site.name()) + " requires exactly one argument");
  }
  return {};
}

Result<FromInstruction> parse_from(const ErrorSite& site, Warnings warnings) {
  const auto& args = site.node().args;
  FromInstruction from;
  if (args.size() == 3 && iequals(args[1], "as")) {
    from.stage_name = to_lower(args[2]);
    if (!valid_stage_name(from.stage_name)) {
      return site.fail_bare("invalid name for build stage: \"" + args[2] +
                                "\", name can't start with a number or contain symbols "
                                "(stage names must match ^[a-z][a-z0-9-_.]*$)",
                            args[2]);
    }
    if (args[2] != from.stage_name) {
      site.warn(warnings, "StageNameCasing: Stage name '" + args[2] + "' should be lowercase");
    }
    const auto& original = site.node().original;
    const std::string keyword = original.substr(0, original.find_first_of(" \t"));
    const bool keyword_upper = keyword == to_upper(keyword);
    const bool keyword_lower = keyword == to_lower(keyword);
    if ((keyword_upper && args[1] != to_upper(args[1])) ||
        (keyword_lower && args[1] != to_lower(args[1]))) {
      site.warn(warnings, "FromAsCasing: '" + args[1] + "' and '" + keyword +
                              "' keywords' casing do not match");
    }
  } else if (args.size() != 1) {
    return site.fail_bare("FROM requires either one or three arguments");
  }
  MB_TRY_ASSIGN(auto flags, parse_flags(site, {{"platform", FlagType::string}}));
  from.base = args[0];
  if (auto platform = flags.value("platform"); !platform.empty()) {
    from.platform = platform;
  }
  return from;
}

Result<RunInstruction> parse_run(const ErrorSite& site) {
  MB_TRY_ASSIGN(auto flags, parse_flags(site, {{"mount", FlagType::strings},
                                               {"network", FlagType::string},
                                               {"security", FlagType::string}}));
  RunInstruction run;
  run.command = command_line(site.node());
  for (const auto& spec : flags.values("mount")) {
    auto mount = parse_mount(spec, nullptr);
    if (!mount) {
      return site.fail(mount.error().message(), "--mount=" + spec);
    }
    run.mounts.push_back(std::move(*mount));
  }
  const auto network = flags.value("network", "default");
  static const std::vector<std::string> k_networks = {"default", "none", "host"};
  const auto net = std::find(k_networks.begin(), k_networks.end(), network);
  if (net == k_networks.end()) {
    return site.fail(
        with_suggestion("invalid network mode \"" + network + "\"", network, k_networks),
        "--network");
  }
  run.network = static_cast<RunNetwork>(net - k_networks.begin());
  const auto security = flags.value("security", "sandbox");
  if (security == "sandbox") {
    run.security = RunSecurity::sandbox;
  } else if (security == "insecure") {
    run.security = RunSecurity::insecure;
  } else {
    return site.fail("security \"" + security + "\" is not valid (sandbox or insecure)",
                     "--security");
  }
  return run;
}

struct SourcesAndDest {
  std::vector<std::string> sources;
  std::vector<InlineSource> inline_sources;
  std::string dest;
};

Result<SourcesAndDest> sources_and_dest(const ErrorSite& site) {
  const auto& node = site.node();
  SourcesAndDest out;
  out.dest = node.args.back();
  if (heredoc_name(out.dest)) {
    return site.fail_bare(std::string(site.name()) + " cannot accept a heredoc as a destination",
                          out.dest);
  }
  for (std::size_t i = 0; i + 1 < node.args.size(); ++i) {
    const auto& word = node.args[i];
    if (node.json_form) {
      out.sources.push_back(word);
      continue;
    }
    if (auto name = heredoc_name(word)) {
      InlineSource inline_source{*name, {}, true};
      for (const auto& heredoc : node.heredocs) {
        if (heredoc.name == *name) {
          inline_source.content = heredoc.content;
          inline_source.expand = heredoc.expand;
        }
      }
      out.inline_sources.push_back(std::move(inline_source));
    } else {
      out.sources.push_back(word);
    }
  }
  return out;
}

Result<void> check_copy_flags(const ErrorSite& site, const std::string& chmod,
                              const std::string& checksum) {
  if (!chmod.empty() && !has_variable(chmod) && !valid_chmod(chmod)) {
    return site.fail("invalid chmod parameter: '" + chmod +
                         "'. it should be octal string and between 0 and 07777",
                     "--chmod");
  }
  if (!checksum.empty() && !has_variable(checksum)) {
    if (auto problem = check_checksum(checksum); !problem.empty()) {
      return site.fail("invalid --checksum \"" + checksum + "\": " + problem, "--checksum");
    }
  }
  return {};
}

Result<AddInstruction> parse_add(const ErrorSite& site) {
  if (site.node().args.size() < 2) {
    return site.fail_bare("ADD requires at least two arguments, but only one was provided. "
                          "Destination could not be determined");
  }
  MB_TRY_ASSIGN(auto flags, parse_flags(site, {{"exclude", FlagType::strings},
                                               {"chown", FlagType::string},
                                               {"chmod", FlagType::string},
                                               {"link", FlagType::boolean},
                                               {"keep-git-dir", FlagType::boolean},
                                               {"checksum", FlagType::string},
                                               {"unpack", FlagType::boolean}}));
  MB_TRY_ASSIGN(auto parts, sources_and_dest(site));
  AddInstruction add;
  add.sources = std::move(parts.sources);
  add.inline_sources = std::move(parts.inline_sources);
  add.dest = std::move(parts.dest);
  add.chown = flags.value("chown");
  add.chmod = flags.value("chmod");
  add.checksum = flags.value("checksum");
  add.link = flags.boolean("link");
  add.keep_git_dir = flags.boolean("keep-git-dir");
  if (flags.used("unpack")) {
    add.unpack = flags.boolean("unpack");
  }
  add.excludes = flags.values("exclude");
  MB_TRY(check_copy_flags(site, add.chmod, add.checksum));
  return add;
}

Result<CopyInstruction> parse_copy(const ErrorSite& site) {
  if (site.node().args.size() < 2) {
    return site.fail_bare("COPY requires at least two arguments, but only one was provided. "
                          "Destination could not be determined");
  }
  MB_TRY_ASSIGN(auto flags, parse_flags(site, {{"exclude", FlagType::strings},
                                               {"parents", FlagType::boolean},
                                               {"chown", FlagType::string},
                                               {"from", FlagType::string},
                                               {"chmod", FlagType::string},
                                               {"link", FlagType::boolean}}));
  MB_TRY_ASSIGN(auto parts, sources_and_dest(site));
  CopyInstruction copy;
  copy.sources = std::move(parts.sources);
  copy.inline_sources = std::move(parts.inline_sources);
  copy.dest = std::move(parts.dest);
  copy.from = flags.value("from");
  copy.chown = flags.value("chown");
  copy.chmod = flags.value("chmod");
  copy.link = flags.boolean("link");
  copy.parents = flags.boolean("parents");
  copy.excludes = flags.values("exclude");
  MB_TRY(check_copy_flags(site, copy.chmod, {}));
  return copy;
}

Result<ExposeInstruction> parse_expose(const ErrorSite& site) {
  if (site.node().args.empty()) {
    return site.fail_bare("EXPOSE requires at least one argument");
  }
  MB_TRY(parse_flags(site, {}));
  ExposeInstruction expose;
  for (const auto& port : site.node().args) {
    if (!has_variable(port)) {
      if (auto problem = check_port(port); !problem.empty()) {
        return site.fail(problem, port);
      }
    }
    expose.ports.push_back(port);
  }
  return expose;
}

Result<ArgInstruction> parse_arg(const ErrorSite& site) {
  if (site.node().args.empty()) {
    return site.fail_bare("ARG requires at least one argument");
  }
  MB_TRY(parse_flags(site, {}));
  ArgInstruction arg;
  for (const auto& word : site.node().args) {
    ArgDeclaration declaration;
    const auto eq = word.find('=');
    declaration.name = word.substr(0, eq);
    if (eq != std::string::npos) {
      declaration.default_value = word.substr(eq + 1);
    }
    if (declaration.name.empty()) {
      return site.fail_bare("ARG names can not be blank", word);
    }
    if (!has_variable(declaration.name) && !valid_arg_name(declaration.name)) {
      return site.fail_bare("ARG name \"" + declaration.name +
                                "\" is invalid: a name starts with a letter or '_' and holds "
                                "only letters, digits and '_'",
                            word);
    }
    arg.args.push_back(std::move(declaration));
  }
  return arg;
}

Result<OnbuildInstruction> parse_onbuild(const ErrorSite& site, Warnings warnings) {
  const auto& node = site.node();
  if (node.nested.empty()) {
    return site.fail_bare("ONBUILD requires at least one argument");
  }
  MB_TRY(parse_flags(site, {}));
  const auto& trigger = node.nested.front();
  const auto keyword = to_upper(trigger.keyword);
  if (keyword == "ONBUILD") {
    return site.fail_bare("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  }
  if (keyword == "MAINTAINER" || keyword == "FROM") {
    return site.fail_bare(keyword + " isn't allowed as an ONBUILD trigger");
  }
  // BuildKit only checks the keyword here and parses the trigger when a later build runs it;
  // checking it now reports a broken trigger to the author of the image, not its users.
  auto nested = trigger;
  if (nested.start_line == 0) {
    nested.start_line = node.start_line;
    nested.end_line = node.end_line;
  }
  MB_TRY(parse_instruction(nested, site.file(), warnings));

  OnbuildInstruction onbuild;
  onbuild.trigger = trigger;
  // The trigger text: the original with the leading ONBUILD keyword removed.
  std::string_view text = trim(node.original);
  if (text.size() >= 7 && iequals(text.substr(0, 7), "onbuild")) {
    text = trim(text.substr(7));
  }
  onbuild.expression = std::string(text);
  for (const auto& heredoc : trigger.heredocs) {
    onbuild.expression += "\n" + heredoc.content + heredoc.name;
  }
  return onbuild;
}

Result<HealthcheckInstruction> parse_healthcheck(const ErrorSite& site) {
  const auto& node = site.node();
  if (node.args.empty()) {
    return site.fail_bare("HEALTHCHECK requires at least one argument");
  }
  HealthcheckInstruction health;
  const auto type = to_upper(node.args[0]);
  if (type == "NONE") {
    // As BuildKit: flags are not even parsed for NONE.
    if (node.args.size() != 1) {
      return site.fail_bare("HEALTHCHECK NONE takes no arguments");
    }
    health.type = HealthcheckType::none;
    health.test = {"NONE"};
    return health;
  }
  MB_TRY_ASSIGN(auto flags, parse_flags(site, {{"interval", FlagType::string},
                                               {"timeout", FlagType::string},
                                               {"start-period", FlagType::string},
                                               {"start-interval", FlagType::string},
                                               {"retries", FlagType::string}}));
  if (type != "CMD") {
    return site.fail_bare("Unknown type \"" + type + "\" in HEALTHCHECK (try CMD)", node.args[0]);
  }
  std::vector<std::string> command(node.args.begin() + 1, node.args.end());
  if (!node.json_form && !command.empty()) {
    std::string joined;
    for (std::size_t i = 0; i < command.size(); ++i) {
      joined += (i == 0 ? "" : " ") + command[i];
    }
    command = {joined};
  }
  if (command.empty()) {
    return site.fail_bare("Missing command after HEALTHCHECK CMD");
  }
  health.type = node.json_form ? HealthcheckType::cmd : HealthcheckType::cmd_shell;
  health.test = {node.json_form ? "CMD" : "CMD-SHELL"};
  health.test.insert(health.test.end(), command.begin(), command.end());

  const std::pair<std::string_view, std::chrono::nanoseconds*> durations[] = {
      {"interval", &health.interval},
      {"timeout", &health.timeout},
      {"start-period", &health.start_period},
      {"start-interval", &health.start_interval}};
  for (const auto& [name, slot] : durations) {
    const auto text = flags.value(name);
    if (text.empty()) {
      continue;
    }
    auto duration = parse_go_duration(text);
    if (!duration) {
      return site.fail("--" + std::string(name) + ": " + duration.error().message(),
                       "--" + std::string(name));
    }
    // Docker's MinimumDuration: a set interval below 1ms is refused, 0 means "default".
    if (duration->count() != 0 && *duration < std::chrono::milliseconds(1)) {
      return site.fail("--" + std::string(name) + " cannot be less than 1ms (got " + text + ")",
                       "--" + std::string(name));
    }
    *slot = *duration;
  }
  if (const auto retries = flags.value("retries"); !retries.empty()) {
    const bool negative = retries[0] == '-';
    const auto digits = std::string_view(retries).substr(negative || retries[0] == '+' ? 1 : 0);
    const auto value = parse_unsigned(digits, 10, std::numeric_limits<std::int32_t>::max());
    if (!value) {
      return site.fail("--retries: invalid value \"" + retries + "\": not a 32-bit integer",
                       "--retries");
    }
    if (negative && *value != 0) {
      return site.fail("--retries cannot be negative (" + retries + ")", "--retries");
    }
    health.retries = static_cast<int>(*value);
  }
  return health;
}

Result<ShellInstruction> parse_shell(const ErrorSite& site) {
  MB_TRY(parse_flags(site, {}));
  const auto& node = site.node();
  if (node.args.empty()) {
    return site.fail_bare("SHELL requires at least one argument");
  }
  if (!node.json_form) {
    std::string message = "SHELL requires the arguments to be in JSON form";
    // A Windows path with single backslashes is invalid JSON, so the parser fell back to shell
    // form; say so, as BuildKit does.
    if (node.original.find('[') != std::string::npos &&
        node.original.find(":\\") != std::string::npos &&
        node.original.find("\\\\") == std::string::npos) {
      message += ". It looks like the arguments include a file path without an escaped "
                 "back-slash; JSON requires back-slashes to be escaped, as in "
                 "[\"c:\\\\path\\\\to\\\\file.exe\", \"/parameter\"]";
    }
    return site.fail_bare(message);
  }
  return ShellInstruction{node.args};
}

Result<Instruction::Payload> parse_payload(InstructionKind kind, const ErrorSite& site,
                                           Warnings warnings) {
  const auto& node = site.node();
  switch (kind) {
  case InstructionKind::from: {
    MB_TRY_ASSIGN(auto from, parse_from(site, warnings));
    return Instruction::Payload(std::move(from));
  }
  case InstructionKind::run: {
    MB_TRY_ASSIGN(auto run, parse_run(site));
    return Instruction::Payload(std::move(run));
  }
  case InstructionKind::cmd:
    MB_TRY(parse_flags(site, {}));
    return Instruction::Payload(CmdInstruction{command_line(node)});
  case InstructionKind::label: {
    MB_TRY(parse_flags(site, {}));
    MB_TRY_ASSIGN(auto labels, key_values(site));
    warn_legacy(site, labels, warnings);
    return Instruction::Payload(LabelInstruction{std::move(labels)});
  }
  case InstructionKind::maintainer:
    MB_TRY(require_exactly_one(site));
    MB_TRY(parse_flags(site, {}));
    site.warn(warnings,
              "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label");
    return Instruction::Payload(MaintainerInstruction{node.args[0]});
  case InstructionKind::expose: {
    MB_TRY_ASSIGN(auto expose, parse_expose(site));
    return Instruction::Payload(std::move(expose));
  }
  case InstructionKind::env: {
    MB_TRY(parse_flags(site, {}));
    MB_TRY_ASSIGN(auto variables, key_values(site));
    warn_legacy(site, variables, warnings);
    return Instruction::Payload(EnvInstruction{std::move(variables)});
  }
  case InstructionKind::add: {
    MB_TRY_ASSIGN(auto add, parse_add(site));
    return Instruction::Payload(std::move(add));
  }
  case InstructionKind::copy: {
    MB_TRY_ASSIGN(auto copy, parse_copy(site));
    return Instruction::Payload(std::move(copy));
  }
  case InstructionKind::entrypoint:
    MB_TRY(parse_flags(site, {}));
    return Instruction::Payload(EntrypointInstruction{command_line(node)});
  case InstructionKind::volume: {
    if (node.args.empty()) {
      return site.fail_bare("VOLUME requires at least one argument");
    }
    MB_TRY(parse_flags(site, {}));
    VolumeInstruction volume;
    for (const auto& path : node.args) {
      const auto trimmed = trim(path);
      if (trimmed.empty()) {
        return site.fail_bare("VOLUME specified can not be an empty string");
      }
      volume.paths.emplace_back(trimmed);
    }
    return Instruction::Payload(std::move(volume));
  }
  case InstructionKind::user:
    MB_TRY(require_exactly_one(site));
    MB_TRY(parse_flags(site, {}));
    if (!has_variable(node.args[0])) {
      if (auto problem = check_user(node.args[0]); !problem.empty()) {
        return site.fail_bare(problem);
      }
    }
    return Instruction::Payload(UserInstruction{node.args[0]});
  case InstructionKind::workdir:
    MB_TRY(require_exactly_one(site));
    MB_TRY(parse_flags(site, {}));
    return Instruction::Payload(WorkdirInstruction{node.args[0]});
  case InstructionKind::arg: {
    MB_TRY_ASSIGN(auto arg, parse_arg(site));
    return Instruction::Payload(std::move(arg));
  }
  case InstructionKind::onbuild: {
    MB_TRY_ASSIGN(auto onbuild, parse_onbuild(site, warnings));
    return Instruction::Payload(std::move(onbuild));
  }
  case InstructionKind::stopsignal:
    MB_TRY(require_exactly_one(site));
    // BuildKit ignores flags here; minibuild refuses them like every other instruction does.
    MB_TRY(parse_flags(site, {}));
    if (!has_variable(node.args[0]) && !valid_signal(node.args[0])) {
      return site.fail("invalid signal: " + node.args[0], node.args[0]);
    }
    return Instruction::Payload(StopsignalInstruction{node.args[0]});
  case InstructionKind::healthcheck: {
    MB_TRY_ASSIGN(auto health, parse_healthcheck(site));
    return Instruction::Payload(std::move(health));
  }
  case InstructionKind::shell: {
    MB_TRY_ASSIGN(auto shell, parse_shell(site));
    return Instruction::Payload(std::move(shell));
  }
  }
  return fail(Code::internal, "unhandled instruction kind");
}

// --- expansion --------------------------------------------------------------------------------

Result<std::vector<std::string>> expand_all(const std::vector<std::string>& words,
                                            const Expander& expand) {
  std::vector<std::string> out;
  out.reserve(words.size());
  for (const auto& word : words) {
    MB_TRY_ASSIGN(auto value, expand(word));
    out.push_back(std::move(value));
  }
  return out;
}

Result<void> expand_pairs(std::vector<KeyValue>& pairs, const Expander& expand) {
  for (auto& pair : pairs) {
    MB_TRY_ASSIGN(pair.key, expand(pair.key));
    MB_TRY_ASSIGN(pair.value, expand(pair.value));
  }
  return {};
}

template <typename CopyLike>
Result<void> expand_copy_like(CopyLike& copy, const Expander& expand, const Expander& raw) {
  MB_TRY_ASSIGN(copy.sources, expand_all(copy.sources, expand));
  MB_TRY_ASSIGN(copy.dest, expand(copy.dest));
  MB_TRY_ASSIGN(copy.chown, expand(copy.chown));
  MB_TRY_ASSIGN(copy.chmod, expand(copy.chmod));
  MB_TRY_ASSIGN(copy.excludes, expand_all(copy.excludes, expand));
  for (auto& inline_source : copy.inline_sources) {
    if (inline_source.expand) {
      MB_TRY_ASSIGN(inline_source.content, raw(inline_source.content));
    }
  }
  return {};
}

Result<void> expand_payload(
    Instruction& instruction, const Expander& expand, const Expander& raw,
    const std::function<Result<std::vector<std::string>>(std::string_view)>& expand_words) {
  switch (instruction.kind()) {
  case InstructionKind::from: {
    auto& from = instruction.as<FromInstruction>();
    MB_TRY_ASSIGN(from.base, expand(from.base));
    if (from.platform) {
      MB_TRY_ASSIGN(*from.platform, expand(*from.platform));
    }
    return {};
  }
  case InstructionKind::run: {
    auto& run = instruction.as<RunInstruction>();
    for (auto& mount : run.mounts) {
      MB_TRY_ASSIGN(mount, parse_mount(mount.spec, &expand));
    }
    return {};
  }
  case InstructionKind::cmd:
  case InstructionKind::maintainer:
  case InstructionKind::entrypoint:
  case InstructionKind::onbuild:
  case InstructionKind::healthcheck:
  case InstructionKind::shell:
    return {};
  case InstructionKind::label:
    return expand_pairs(instruction.as<LabelInstruction>().labels, expand);
  case InstructionKind::env:
    return expand_pairs(instruction.as<EnvInstruction>().variables, expand);
  case InstructionKind::expose: {
    auto& expose = instruction.as<ExposeInstruction>();
    std::vector<std::string> ports;
    for (const auto& word : expose.ports) {
      MB_TRY_ASSIGN(auto split, expand_words(word));
      for (auto& port : split) {
        if (auto problem = check_port(port); !problem.empty()) {
          return fail(Code::dockerfile, problem);
        }
        ports.push_back(std::move(port));
      }
    }
    expose.ports = std::move(ports);
    return {};
  }
  case InstructionKind::add: {
    auto& add = instruction.as<AddInstruction>();
    MB_TRY(expand_copy_like(add, expand, raw));
    MB_TRY_ASSIGN(add.checksum, expand(add.checksum));
    return {};
  }
  case InstructionKind::copy: {
    auto& copy = instruction.as<CopyInstruction>();
    MB_TRY(expand_copy_like(copy, expand, raw));
    MB_TRY_ASSIGN(copy.from, expand(copy.from));
    return {};
  }
  case InstructionKind::volume: {
    auto& volume = instruction.as<VolumeInstruction>();
    MB_TRY_ASSIGN(volume.paths, expand_all(volume.paths, expand));
    for (const auto& path : volume.paths) {
      if (trim(path).empty()) {
        return fail(Code::dockerfile, "VOLUME specified can not be an empty string");
      }
    }
    return {};
  }
  case InstructionKind::user: {
    auto& user = instruction.as<UserInstruction>();
    MB_TRY_ASSIGN(user.user, expand(user.user));
    // An empty result (`USER $UNSET`) is accepted, as BuildKit does: the default user.
    if (auto problem = user.user.empty() ? std::string() : check_user(user.user);
        !problem.empty()) {
      return fail(Code::dockerfile, problem);
    }
    return {};
  }
  case InstructionKind::workdir: {
    auto& workdir = instruction.as<WorkdirInstruction>();
    MB_TRY_ASSIGN(workdir.path, expand(workdir.path));
    return {};
  }
  case InstructionKind::arg: {
    for (auto& declaration : instruction.as<ArgInstruction>().args) {
      MB_TRY_ASSIGN(declaration.name, expand(declaration.name));
      if (declaration.default_value) {
        MB_TRY_ASSIGN(*declaration.default_value, expand(*declaration.default_value));
      }
    }
    return {};
  }
  case InstructionKind::stopsignal: {
    auto& stop = instruction.as<StopsignalInstruction>();
    MB_TRY_ASSIGN(stop.signal, expand(stop.signal));
    if (!valid_signal(stop.signal)) {
      return fail(Code::dockerfile, "invalid signal: " + stop.signal);
    }
    return {};
  }
  }
  return fail(Code::internal, "unhandled instruction kind");
}

} // namespace

std::string_view instruction_name(InstructionKind kind) {
  return k_instruction_names[static_cast<std::size_t>(kind)];
}

std::optional<InstructionKind> instruction_kind(std::string_view keyword) {
  const auto upper = to_upper(keyword);
  for (std::size_t i = 0; i < k_instruction_names.size(); ++i) {
    if (k_instruction_names[i] == upper) {
      return static_cast<InstructionKind>(i);
    }
  }
  return std::nullopt;
}

std::string_view mount_type_name(MountType type) {
  switch (type) {
  case MountType::bind:
    return "bind";
  case MountType::cache:
    return "cache";
  case MountType::tmpfs:
    return "tmpfs";
  case MountType::secret:
    return "secret";
  case MountType::ssh:
    return "ssh";
  }
  return "bind";
}

std::string_view mount_sharing_name(MountSharing sharing) {
  switch (sharing) {
  case MountSharing::shared:
    return "shared";
  case MountSharing::private_:
    return "private";
  case MountSharing::locked:
    return "locked";
  }
  return "shared";
}

std::string_view run_network_name(RunNetwork network) {
  switch (network) {
  case RunNetwork::default_:
    return "default";
  case RunNetwork::none:
    return "none";
  case RunNetwork::host:
    return "host";
  }
  return "default";
}

std::string_view run_security_name(RunSecurity security) {
  switch (security) {
  case RunSecurity::sandbox:
    return "sandbox";
  case RunSecurity::insecure:
    return "insecure";
  }
  return "sandbox";
}

std::optional<std::string> suggest_nearest(std::string_view word,
                                           const std::vector<std::string>& candidates) {
  const auto lower = to_lower(word);
  std::optional<std::string> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    const auto distance = edit_distance(lower, to_lower(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  // A typo, not a different word: at most 2 edits (1 for short words), and never a distance
  // that rewrites most of the word.
  const std::size_t allowed = lower.size() <= 3 ? 1 : 2;
  if (!best || best_distance == 0 || best_distance > allowed || best_distance >= lower.size()) {
    return std::nullopt;
  }
  return best;
}

Result<std::chrono::nanoseconds> parse_go_duration(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  auto invalid = [&] { return fail(Code::dockerfile, "time: invalid duration " + quoted); };
  std::string_view rest = text;
  bool negative = false;
  if (!rest.empty() && (rest[0] == '-' || rest[0] == '+')) {
    negative = rest[0] == '-';
    rest.remove_prefix(1);
  }
  if (rest == "0") {
    return std::chrono::nanoseconds(0);
  }
  if (rest.empty()) {
    return invalid();
  }
  constexpr std::uint64_t k_max = static_cast<std::uint64_t>(1) << 63;
  std::uint64_t total = 0;
  while (!rest.empty()) {
    // The number: digits, optionally '.' and more digits; at least one digit overall.
    std::uint64_t whole = 0;
    bool overflow = false;
    std::size_t pos = 0;
    while (pos < rest.size() && rest[pos] >= '0' && rest[pos] <= '9') {
      if (whole > (k_max - 9) / 10) {
        overflow = true;
      } else {
        whole = whole * 10 + static_cast<std::uint64_t>(rest[pos] - '0');
      }
      ++pos;
    }
    bool any_digits = pos > 0;
    std::uint64_t fraction = 0;
    double scale = 1;
    if (pos < rest.size() && rest[pos] == '.') {
      ++pos;
      while (pos < rest.size() && rest[pos] >= '0' && rest[pos] <= '9') {
        if (fraction <= (k_max - 9) / 10) {
          fraction = fraction * 10 + static_cast<std::uint64_t>(rest[pos] - '0');
          scale *= 10;
        }
        any_digits = true;
        ++pos;
      }
    }
    if (!any_digits || overflow) {
      return invalid();
    }
    std::size_t unit_end = pos;
    while (unit_end < rest.size() && rest[unit_end] != '.' &&
           !(rest[unit_end] >= '0' && rest[unit_end] <= '9')) {
      ++unit_end;
    }
    const auto unit = rest.substr(pos, unit_end - pos);
    if (unit.empty()) {
      return fail(Code::dockerfile, "time: missing unit in duration " + quoted);
    }
    std::uint64_t multiplier = 0;
    if (unit == "ns") {
      multiplier = 1;
    } else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") {
      multiplier = 1000;
    } else if (unit == "ms") {
      multiplier = 1000000;
    } else if (unit == "s") {
      multiplier = 1000000000;
    } else if (unit == "m") {
      multiplier = 60ULL * 1000000000;
    } else if (unit == "h") {
      multiplier = 3600ULL * 1000000000;
    } else {
      return fail(Code::dockerfile,
                  "time: unknown unit \"" + std::string(unit) + "\" in duration " + quoted);
    }
    if (whole > k_max / multiplier) {
      return invalid();
    }
    std::uint64_t value = whole * multiplier;
    value += static_cast<std::uint64_t>(static_cast<double>(fraction) *
                                        (static_cast<double>(multiplier) / scale));
    if (value > k_max || total > k_max - value) {
      return invalid();
    }
    total += value;
    rest.remove_prefix(unit_end);
  }
  if (total > k_max - (negative ? 0 : 1)) {
    return invalid();
  }
  const auto signed_total =
      negative ? -static_cast<std::int64_t>(total - 1) - 1 : static_cast<std::int64_t>(total);
  return std::chrono::nanoseconds(signed_total);
}

Result<RunMount> parse_run_mount(std::string_view spec) {
  return parse_mount(spec, nullptr);
}

Result<Instruction> parse_instruction(const Node& node, std::string_view file,
                                      std::vector<Warning>* warnings) {
  const auto kind = instruction_kind(node.keyword);
  if (!kind) {
    const auto upper = to_upper(node.keyword);
    std::vector<std::string> names(k_instruction_names.begin(), k_instruction_names.end());
    Error error(Code::dockerfile,
                with_suggestion("unknown instruction \"" + upper + "\"", upper, names));
    error.at(range_of(node, file, 1));
    return fail(std::move(error));
  }
  const ErrorSite site(node, file, instruction_name(*kind));
  MB_TRY_ASSIGN(auto payload, parse_payload(*kind, site, warnings));
  Instruction instruction{node.original, range_of(node, file, 1), std::move(payload)};
  instruction.squash_group = node.squash_group;
  return instruction;
}

Result<Instruction> expand_instruction(const Instruction& instruction, const Environment& env,
                                       const ShellLexer& lexer, std::set<std::string>* used_names) {
  auto note = [used_names](const std::set<std::string>& matched) {
    if (used_names != nullptr) {
      used_names->insert(matched.begin(), matched.end());
    }
  };
  const Expander expand = [&](std::string_view word) -> Result<std::string> {
    if (word.empty()) {
      return std::string();
    }
    MB_TRY_ASSIGN(auto result, lexer.process_word(word, env));
    note(result.matched);
    return std::move(result.word);
  };
  // Heredoc bodies: BuildKit expands them with '\' as escape and quotes kept (SkipProcessQuotes),
  // whatever the file's escape directive is.
  const ShellLexer raw_lexer('\\', ShellLexerOptions{true, false, false});
  const Expander raw = [&](std::string_view word) -> Result<std::string> {
    MB_TRY_ASSIGN(auto result, raw_lexer.process_word(word, env));
    note(result.matched);
    return std::move(result.word);
  };
  const auto expand_words = [&](std::string_view word) -> Result<std::vector<std::string>> {
    MB_TRY_ASSIGN(auto result, lexer.process_words(word, env));
    note(result.matched);
    return std::move(result.words);
  };

  Instruction out = instruction;
  auto done = expand_payload(out, expand, raw, expand_words);
  if (!done) {
    Error error = std::move(done).error();
    error.wrap(std::string(instruction_name(instruction.kind())));
    error.at(instruction.location);
    return fail(std::move(error));
  }
  return out;
}

} // namespace minibuild::dockerfile
