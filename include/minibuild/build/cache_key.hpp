// The build cache's keys: one deliberate recipe (docs/cache.md), written through one builder.
//
// Every field is written as a type tag, its length and its bytes ("T<tag> <length>:<bytes>\n"),
// so no two different field lists hash alike: a value cannot spill into the next field, and an
// empty field differs from an absent one (ccache's hash_delimiter, made length-framed). The key
// is the sha256 of that text; the text itself can be kept for `--debug-cache-key`.
#pragma once

#include <minibuild/oci/digest.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::build {

/// The version of the key recipe. Bump it whenever what a step's result depends on, or how it
/// is written here, changes: old entries then simply never match.
inline constexpr int k_cache_key_version = 1;

class CacheKey {
public:
  /// Starts a key: the recipe version and the kind of step ("from", "run", "copy", ...).
  explicit CacheKey(std::string_view kind);

  /// Appends one field. `tag` names it ("parent", "argv", "env", ...); the same tag may repeat
  /// (list items), in a fixed order chosen by the caller.
  CacheKey& add(std::string_view tag, std::string_view value);
  CacheKey& add(std::string_view tag, std::int64_t value);
  /// A list as one field: its item count, then each item framed.
  CacheKey& add_list(std::string_view tag, const std::vector<std::string>& values);

  /// The key: sha256 of everything added, in order.
  oci::Digest digest() const;
  /// The text that was hashed, for `--debug-cache-key` dumps and tests.
  const std::string& text() const { return m_text; }

private:
  std::string m_text;
};

} // namespace minibuild::build
