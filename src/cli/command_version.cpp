// `minibuild version`: our version and the versions of the libraries we run on, which is what a
// bug report needs.
#include "commands.hpp"

#include <minibuild/version.hpp>

#include <archive.h>
#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <seccomp.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>

namespace minibuild::cli {

Result<void> run_version(Context& /*context*/, const std::string& format) {
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  const scmp_version* seccomp = seccomp_version();
  nlohmann::ordered_json info = {
      {"version", k_version},
      {"libarchive", archive_version_number() / 1000000 == 3 ? archive_version_string() : "?"},
      {"libcurl", curl->version},
      {"openssl", OpenSSL_version(OPENSSL_VERSION)},
      {"libseccomp", std::to_string(seccomp->major) + "." + std::to_string(seccomp->minor) + "." +
                         std::to_string(seccomp->micro)},
      {"zlib", zlibVersion()},
      {"zstd", ZSTD_versionString()},
  };
  if (format == "json") {
    std::printf("%s\n", info.dump(2).c_str());
    return {};
  }
  std::printf("minibuild version %s\n", k_version);
  for (const auto& [name, value] : info.items()) {
    if (name != "version") {
      std::printf("  %-11s %s\n", name.c_str(), value.get<std::string>().c_str());
    }
  }
  return {};
}

} // namespace minibuild::cli
