#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/xattrs.hpp>

namespace minibuild::layer {

bool is_image_xattr(std::string_view name) {
  return !name.starts_with("trusted.overlay.") && !name.starts_with("user.overlay.") &&
         name != "security.selinux" && name != "system.nfs4_acl" && name != k_owner_xattr;
}

} // namespace minibuild::layer
