// COPY/ADD --chmod: an octal mode or a chmod(1) symbolic mode, as BuildKit accepts it.
//
// BuildKit takes an octal value up to 07777 as the exact mode of every copied file and directory.
// Anything else goes to tonistiigi/dchapes-mode, a port of BSD setmode(3): comma-separated
// clauses `[ugoa]*([-+=]([rwxXst]*|[ugo]))+`, applied to each entry's own source mode. The BSD
// rules this implementation follows:
//   - without a `who` (`+x`, `=rw`), permission bits are masked by the umask; BuildKit runs with
//     its daemon's umask, and minibuild uses the usual 022 so the result does not depend on the
//     builder's environment (`+w` adds owner write only);
//   - `X` counts for `+` only: it adds execute where the entry is a directory or already has an
//     execute bit; with `-` and `=` it is ignored;
//   - `s` is ignored when `who` is only `o`, `t` likewise;
//   - `u`, `g`, `o` after an operator copy that class's current bits (`go=u-w`).
#pragma once

#include <minibuild/base/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::build {

/// A parsed --chmod value. Copyable; apply() is pure.
class ModeChange {
public:
  /// Parses the flag value. Fails with Code::dockerfile: "invalid chmod parameter: '...'. it
  /// should be octal string and between 0 and 07777" for a numeric value that is not such a
  /// string (BuildKit's wording), and "invalid chmod parameter: '...': invalid symbolic mode"
  /// for a malformed symbolic one.
  static Result<ModeChange> parse(std::string_view text);

  /// The permission bits (07777) for an entry whose source permission bits are `mode`;
  /// `is_directory` matters for `X`.
  std::uint32_t apply(std::uint32_t mode, bool is_directory) const;

  /// True for an octal value (every entry gets the same mode).
  bool is_absolute() const { return m_absolute; }
  /// The value as written.
  const std::string& text() const { return m_text; }

  /// One operation of a symbolic clause (public for the parser in file_mode.cpp).
  struct Op {
    char op = '+';              ///< '+', '-' or '='
    std::uint32_t who = 0;      ///< affected bits; 0 = "no who": all classes masked by the umask
    std::uint32_t bits = 0;     ///< r/w/x/s/t bits to add, remove or set
    bool conditional_x = false; ///< `+X`
    char copy_from = 0;         ///< 'u', 'g' or 'o' for a copy operation, else 0
  };

private:
  ModeChange() = default;
  std::string m_text;
  bool m_absolute = false;
  std::uint32_t m_mode = 0;
  std::vector<Op> m_ops;
};

} // namespace minibuild::build
