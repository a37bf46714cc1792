#include <minibuild/layer/id_map.hpp>

namespace minibuild::layer {

namespace {

// A range covers [start, start + size); the arithmetic is done in 64 bits so that a range that
// ends at 2^32 does not wrap.
bool in_range(std::uint32_t start, std::uint32_t size, std::uint32_t id) {
  return id >= start && static_cast<std::uint64_t>(id) < static_cast<std::uint64_t>(start) + size;
}

} // namespace

std::optional<std::uint32_t> to_container_id(const std::vector<IdRange>& ranges,
                                             std::uint32_t host_id) {
  if (ranges.empty()) {
    return host_id;
  }
  for (const IdRange& range : ranges) {
    if (in_range(range.host_id, range.size, host_id)) {
      return range.container_id + (host_id - range.host_id);
    }
  }
  return std::nullopt;
}

std::optional<std::uint32_t> to_host_id(const std::vector<IdRange>& ranges,
                                        std::uint32_t container_id) {
  if (ranges.empty()) {
    return container_id;
  }
  for (const IdRange& range : ranges) {
    if (in_range(range.container_id, range.size, container_id)) {
      return range.host_id + (container_id - range.container_id);
    }
  }
  return std::nullopt;
}

} // namespace minibuild::layer
