// Go's strconv.Quote, for texts that must read exactly as BuildKit writes them: the parser dump
// and the history entries (`CMD ["a" "b"]`) of an image.
#pragma once

#include <string>
#include <string_view>

namespace minibuild::dockerfile {

/// `"a\"b"`: quotes and backslashes escaped, \a \b \f \n \r \t \v, other control characters and
/// invalid UTF-8 bytes as \xNN, code points Go's unicode.IsPrint rejects as \uXXXX or
/// \UXXXXXXXX (Unicode 15.0, Go 1.21+).
std::string go_quote(std::string_view text);

} // namespace minibuild::dockerfile
