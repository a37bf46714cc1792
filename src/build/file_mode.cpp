#include <minibuild/build/file_mode.hpp>

#include <sys/stat.h>

namespace minibuild::build {

namespace {

// BuildKit applies symbolic modes with buildkitd's umask; a fixed, conventional one keeps builds
// reproducible across machines (see file_mode.hpp).
constexpr std::uint32_t k_umask = 022;
constexpr std::uint32_t k_standard_bits = S_ISUID | S_ISGID | S_IRWXU | S_IRWXG | S_IRWXO;

tl::unexpected<Error> octal_error(std::string_view text) {
  return fail(Code::dockerfile, "invalid chmod parameter: '" + std::string(text) +
                                    "'. it should be octal string and between 0 and 07777");
}

tl::unexpected<Error> symbolic_error(std::string_view text, std::string_view why) {
  return fail(Code::dockerfile, "invalid chmod parameter: '" + std::string(text) +
                                    "': invalid symbolic mode (" + std::string(why) + ")");
}

// The bits of class `c` ('u', 'g' or 'o') as a 3-bit value.
std::uint32_t class_value(std::uint32_t mode, char c) {
  switch (c) {
  case 'u':
    return (mode >> 6) & 07;
  case 'g':
    return (mode >> 3) & 07;
  default:
    return mode & 07;
  }
}

} // namespace

Result<ModeChange> ModeChange::parse(std::string_view text) {
  ModeChange change;
  change.m_text = std::string(text);
  if (text.empty()) {
    return symbolic_error(text, "empty");
  }
  if (text[0] >= '0' && text[0] <= '9') {
    std::uint32_t value = 0;
    for (char c : text) {
      if (c < '0' || c > '7') {
        return octal_error(text);
      }
      value = value * 8 + static_cast<std::uint32_t>(c - '0');
      if (value > 07777) {
        return octal_error(text);
      }
    }
    change.m_absolute = true;
    change.m_mode = value;
    return change;
  }

  std::size_t at = 0;
  while (true) {
    std::uint32_t who = 0;
    while (at < text.size() &&
           (text[at] == 'a' || text[at] == 'u' || text[at] == 'g' || text[at] == 'o')) {
      switch (text[at]) {
      case 'a':
        who |= k_standard_bits;
        break;
      case 'u':
        who |= S_ISUID | S_IRWXU;
        break;
      case 'g':
        who |= S_ISGID | S_IRWXG;
        break;
      default:
        who |= S_IRWXO;
        break;
      }
      ++at;
    }
    if (at >= text.size()) {
      return symbolic_error(text, "missing operator");
    }
    // One or more operators, each with its permission letters: `u+r-w`.
    while (true) {
      const char op = text[at];
      if (op != '+' && op != '-' && op != '=') {
        return symbolic_error(text, std::string("unexpected '") + op + "'");
      }
      ++at;
      Op pending{op, who};
      bool emitted_any = false;
      const auto flush = [&] {
        if (pending.bits != 0 || pending.conditional_x || (op == '=' && !emitted_any)) {
          change.m_ops.push_back(pending);
          emitted_any = true;
        }
        pending = Op{op, who};
      };
      const bool only_other = who != 0 && (who & ~static_cast<std::uint32_t>(S_IRWXO)) == 0;
      for (; at < text.size(); ++at) {
        const char c = text[at];
        if (c == 'r') {
          pending.bits |= S_IRUSR | S_IRGRP | S_IROTH;
        } else if (c == 'w') {
          pending.bits |= S_IWUSR | S_IWGRP | S_IWOTH;
        } else if (c == 'x') {
          pending.bits |= S_IXUSR | S_IXGRP | S_IXOTH;
        } else if (c == 'X') {
          pending.conditional_x = pending.conditional_x || op == '+';
        } else if (c == 's') {
          if (!only_other) {
            pending.bits |= S_ISUID | S_ISGID;
          }
        } else if (c == 't') {
          if (!only_other) {
            pending.bits |= S_ISVTX;
            pending.who |= who != 0 ? S_ISVTX : 0;
          }
        } else if (c == 'u' || c == 'g' || c == 'o') {
          flush();
          Op copy{op, who};
          copy.copy_from = c;
          change.m_ops.push_back(copy);
          emitted_any = true;
        } else {
          break;
        }
      }
      flush();
      if (at >= text.size() || text[at] == ',') {
        break;
      }
    }
    if (at >= text.size()) {
      break;
    }
    ++at; // ','
    if (at >= text.size()) {
      return symbolic_error(text, "trailing ','");
    }
  }
  return change;
}

std::uint32_t ModeChange::apply(std::uint32_t mode, bool is_directory) const {
  if (m_absolute) {
    return m_mode;
  }
  const std::uint32_t original = mode & 07777;
  std::uint32_t result = original;
  const std::uint32_t umask_mask = ~k_umask & 07777;
  for (const Op& op : m_ops) {
    if (op.copy_from != 0) {
      const std::uint32_t value = class_value(result, op.copy_from);
      // Target classes: those named in `who`, or all of them (masked by the umask) without one.
      const std::uint32_t limit = op.who != 0 ? 07777 : umask_mask;
      const bool to_user = op.who == 0 || (op.who & S_IRUSR) != 0;
      const bool to_group = op.who == 0 || (op.who & S_IRGRP) != 0;
      const bool to_other = op.who == 0 || (op.who & S_IROTH) != 0;
      const std::uint32_t clear = op.op == '=' ? 07 : value;
      const auto update = [&](bool enabled, int shift) {
        if (!enabled) {
          return;
        }
        if (op.op == '-' || op.op == '=') {
          result &= ~((clear << shift) & limit);
        }
        if (op.op == '+' || op.op == '=') {
          result |= (value << shift) & limit;
        }
      };
      update(to_user, 6);
      update(to_group, 3);
      update(to_other, 0);
      continue;
    }
    const std::uint32_t affected = op.who != 0 ? op.who : umask_mask;
    std::uint32_t bits = op.bits & affected;
    if (op.conditional_x && (is_directory || (original & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0)) {
      bits |= (S_IXUSR | S_IXGRP | S_IXOTH) & affected;
    }
    switch (op.op) {
    case '+':
      result |= bits;
      break;
    case '-':
      result &= ~bits;
      break;
    default: // '=': clear the named classes (all standard bits without a who), then set.
      result &= ~(op.who != 0 ? op.who : k_standard_bits);
      result |= bits;
      break;
    }
  }
  return result & 07777;
}

} // namespace minibuild::build
