// How CLI commands reach the local store: opening it at the root the global options name, and
// finding the image a user means by a name or an id.
#pragma once

#include "commands.hpp"

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/store.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace minibuild::cli {

/// The store root for this invocation: resolve_store_root() of --root / MINIBUILD_ROOT,
/// XDG_DATA_HOME, HOME and the effective uid.
std::string store_root(const Context& context);

/// Opens (creating on first use) the store at store_root(); errors say which root.
Result<std::unique_ptr<store::Store>> open_store(const Context& context);

/// An image the user named.
struct ImageRef {
  std::string name;       ///< the stored "repository:tag"; empty when found by id
  oci::Digest digest;     ///< the manifest or index the name points at
  std::string media_type; ///< its media type; may be empty for an image found by id
};

/// Whether `image` may name images by id: `inspect`, `history` and `save` accept ids, `rmi`
/// removes names only.
enum class ById { no, yes };

/// Finds an image: first by name, trying build::store_name_candidates (the name as given,
/// ":latest" added, then Docker Hub's "docker.io/library/" and "docker.io/" forms); then, with
/// ById::yes, by id: "sha256:<hex>" or a hex prefix of at least 12 characters of a manifest
/// digest or image id (config digest). Code::not_found when nothing matches, Code::usage when
/// an id prefix matches several images.
Result<ImageRef> find_image(store::Store& store, std::string_view image, ById by_id);

} // namespace minibuild::cli
