// layer_export_bench: exports a directory as an OCI layer blob into a file and reports the
// digests, the size and the throughput. Driven by bench/layer_export.sh (see bench/README.md).
//
//   layer_export_bench [--compression gzip|zstd|none] [--level N] [--threads N]
//                      [--overlay] [--source-date-epoch N] DIR OUTPUT
#include <minibuild/layer/byte_sink.hpp>
#include <minibuild/layer/export.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <unistd.h>

namespace {

using namespace minibuild;

// Writes the blob to a file descriptor, as the store's blob writer will (minus the fsync and
// rename, which do not belong in a throughput figure).
class FdSink : public layer::ByteSink {
public:
  explicit FdSink(int fd) : m_fd(fd) {}
  Result<void> write(std::span<const char> bytes) override {
    while (!bytes.empty()) {
      ssize_t wrote = ::write(m_fd, bytes.data(), bytes.size());
      if (wrote < 0 && errno == EINTR) {
        continue;
      }
      if (wrote < 0) {
        return fail_errno(errno, "write output");
      }
      bytes = bytes.subspan(static_cast<std::size_t>(wrote));
    }
    return {};
  }

private:
  int m_fd;
};

int usage() {
  std::fprintf(stderr, "usage: layer_export_bench [--compression gzip|zstd|none] [--level N] "
                       "[--threads N] [--overlay] [--source-date-epoch N] DIR OUTPUT\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  layer::ExportOptions options;
  std::string dir;
  std::string output;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--compression") {
      const char* v = value();
      if (v == nullptr) {
        return usage();
      }
      std::string_view name = v;
      if (name == "gzip") {
        options.compression = oci::Compression::gzip;
      } else if (name == "zstd") {
        options.compression = oci::Compression::zstd;
      } else if (name == "none") {
        options.compression = oci::Compression::none;
      } else {
        return usage();
      }
    } else if (arg == "--level") {
      const char* v = value();
      if (v == nullptr) {
        return usage();
      }
      options.level = std::atoi(v);
    } else if (arg == "--threads") {
      const char* v = value();
      if (v == nullptr) {
        return usage();
      }
      options.threads = static_cast<unsigned>(std::atoi(v));
    } else if (arg == "--overlay") {
      options.kind = layer::TreeKind::overlay_upper;
    } else if (arg == "--source-date-epoch") {
      const char* v = value();
      if (v == nullptr) {
        return usage();
      }
      auto epoch = layer::parse_source_date_epoch(v);
      if (!epoch) {
        std::fprintf(stderr, "layer_export_bench: %s\n", epoch.error().what().c_str());
        return 2;
      }
      options.source_date_epoch = *epoch;
    } else if (dir.empty()) {
      dir = arg;
    } else if (output.empty()) {
      output = arg;
    } else {
      return usage();
    }
  }
  if (dir.empty() || output.empty()) {
    return usage();
  }
  int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "layer_export_bench: open %s: %s\n", output.c_str(), std::strerror(errno));
    return 1;
  }
  FdSink sink(fd);
  auto start = std::chrono::steady_clock::now();
  auto result = layer::export_layer(dir, options, sink);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  if (!result) {
    std::fprintf(stderr, "layer_export_bench: %s\n", result.error().what().c_str());
    return 1;
  }
  double megabytes = static_cast<double>(result->uncompressed_size) / 1e6;
  std::printf("media_type %s\n", result->media_type.c_str());
  std::printf("diff_id    %s\n", result->diff_id.to_string().c_str());
  std::printf("digest     %s\n", result->digest.to_string().c_str());
  std::printf("size       %llu\n", static_cast<unsigned long long>(result->size));
  std::printf("tar_size   %llu\n", static_cast<unsigned long long>(result->uncompressed_size));
  std::printf("entries    %llu\n", static_cast<unsigned long long>(result->entries));
  std::printf("seconds    %.3f\n", seconds);
  std::printf("MB/s       %.1f\n", seconds > 0 ? megabytes / seconds : 0.0);
  for (const std::string& warning : result->warnings) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }
  return 0;
}
