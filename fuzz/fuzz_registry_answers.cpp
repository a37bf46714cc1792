// Fuzzes what a registry (or a user naming an image) hands minibuild before anything is
// verified against a digest: WWW-Authenticate challenges, Retry-After values, error bodies,
// image references, and manifest, index and config documents with platform selection. The
// first byte picks the reader; the rest is the input.
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/json.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/registry/auth.hpp>
#include <minibuild/registry/client.hpp>
#include <minibuild/registry/pull.hpp>
#include <minibuild/registry/reference.hpp>
#include <minibuild/registry/retry.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minibuild;
  if (size == 0) {
    return 0;
  }
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
  case 0:
    (void)registry::parse_www_authenticate(input);
    break;
  case 1:
    (void)registry::parse_retry_after(input, std::chrono::system_clock::time_point{});
    break;
  case 2: {
    auto reference = registry::parse_reference(input);
    if (reference) {
      // The canonical text must parse back to the same reference.
      auto again = registry::parse_reference(reference->to_string());
      if (!again || !(*again == *reference)) {
        __builtin_trap();
      }
      (void)reference->familiar_string();
      (void)reference->api_host();
    }
    break;
  }
  case 3: {
    registry::HttpResponse response;
    response.status = 404;
    response.body = std::string(input);
    (void)registry::describe_error_response(response);
    break;
  }
  case 4:
    (void)registry::select_platform(input, oci::make_platform("linux", "amd64"));
    (void)registry::select_platform(input, oci::make_platform("linux", "arm64"));
    break;
  case 5:
    (void)oci::parse<oci::ImageManifest>(input);
    break;
  case 6:
    (void)oci::parse<oci::ImageIndex>(input);
    break;
  default:
    (void)oci::parse<oci::ImageConfig>(input);
    break;
  }
  return 0;
}
