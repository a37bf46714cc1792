#include "store_access.hpp"

#include <minibuild/build/executor.hpp>
#include <minibuild/store/images.hpp>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace minibuild::cli {

namespace {

bool is_hex(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

} // namespace

std::string store_root(const Context& context) {
  const std::string root = resolve_store_root(context.global().root, std::getenv("XDG_DATA_HOME"),
                                              std::getenv("HOME"), ::geteuid() == 0);
  // Absolute, because paths below the root reach the sandbox's helper processes, which work
  // from other directories (mount sources, overlay dirs).
  std::error_code error;
  const auto absolute = std::filesystem::absolute(root, error);
  return error ? root : absolute.lexically_normal().string();
}

Result<std::unique_ptr<store::Store>> open_store(const Context& context) {
  std::string root = store_root(context);
  auto store = store::Store::open(root);
  if (!store) {
    return fail(std::move(store).error().wrap("open store \"" + root + "\""));
  }
  return store;
}

Result<ImageRef> find_image(store::Store& store, std::string_view image, ById by_id) {
  std::string_view id = image;
  const bool digest_form = id.substr(0, 7) == "sha256:";
  if (!digest_form) {
    for (const auto& candidate : build::store_name_candidates(image)) {
      MB_TRY_ASSIGN(auto named, store.names().resolve(candidate));
      if (named) {
        return ImageRef{named->name, named->digest, named->media_type};
      }
    }
  }
  if (by_id == ById::yes) {
    if (digest_form) {
      id.remove_prefix(7);
    }
    // docker accepts any unique prefix; minibuild asks for at least the 12 characters it shows,
    // so a short word that happens to be hex is never taken for an id.
    if (is_hex(id) && (id.size() >= 12 || digest_form)) {
      MB_TRY_ASSIGN(auto rows, store::list_images(store));
      std::vector<ImageRef> matches;
      for (const auto& row : rows) {
        bool hit = row.manifest_digest.hex().rfind(id, 0) == 0 ||
                   (!row.image_id.empty() && row.image_id.hex().rfind(id, 0) == 0);
        bool known = std::any_of(matches.begin(), matches.end(), [&](const ImageRef& match) {
          return match.digest == row.manifest_digest;
        });
        if (hit && !known) {
          matches.push_back({"", row.manifest_digest, row.media_type});
        }
      }
      if (matches.size() > 1) {
        return fail(Code::usage, "image id \"" + std::string(image) + "\" matches " +
                                     std::to_string(matches.size()) +
                                     " images; give more characters");
      }
      if (matches.size() == 1) {
        return matches.front();
      }
    }
  }
  return fail(Code::not_found, "no image named \"" + std::string(image) + "\" in the store \"" +
                                   store.root() + "\" (see `minibuild images`)");
}

} // namespace minibuild::cli
