// Which extended attributes are part of an image and which describe the host they sit on.
#pragma once

#include <string_view>

namespace minibuild::layer {

/// Whether an xattr is image content that travels with a file into a layer and through COPY:
/// false for overlayfs's bookkeeping (trusted.overlay.*, user.overlay.*: overlayfs.rst,
/// "Permission model", "Redirect dir", "Metacopy"), labels of the building host (security.selinux,
/// whose meaning is the host's policy, and system.nfs4_acl, the NFS server's: umoci's
/// ignoreXattrs leaves them out too) and minibuild's own owner record (apply.hpp,
/// k_owner_xattr); true for everything else, security.capability and user.* included.
bool is_image_xattr(std::string_view name);

} // namespace minibuild::layer
