// Wildcards in COPY/ADD source paths, as Go's path/filepath.Match defines them.
//
// BuildKit resolves a source such as `src/*.go` by matching each path below the last literal
// directory against the pattern with filepath.Match (fsutil copy.ResolveWildcards), so the rules
// are Go's, not the shell's and not .dockerignore's:
//   - `*` matches any run of characters except `/` (a leading dot is not special);
//   - `?` matches one character (one UTF-8 encoded code point) except `/`;
//   - `[abc]`, `[a-z]`, `[^a-z]` are character classes over code points; `\` escapes inside them;
//   - `\c` outside a class matches `c` literally;
//   - malformed patterns (`[`, `[]`, `[a-]`, `[-a]`, a trailing `\`) are errors, whatever the name.
// `**` has no special meaning here (it is `*` twice); COPY --parents gives it one, see copy.hpp.
#pragma once

#include <minibuild/base/error.hpp>

#include <string_view>

namespace minibuild::build {

/// filepath.Match(pattern, name): whether `name` matches the whole `pattern`. Fails with
/// Code::dockerfile ("bad wildcard pattern ...") when the pattern is malformed, even when a
/// prefix already decides the answer, as Go >= 1.16 does. Pure; thread-safe.
Result<bool> path_match(std::string_view pattern, std::string_view name);

/// Whether `text` holds an unescaped `*`, `?` or `[` (BuildKit's containsWildcards: a `\` makes
/// the next byte literal). A path without wildcards names exactly one file.
bool has_wildcards(std::string_view text);

} // namespace minibuild::build
