#include "encoder.hpp"
#include "tar_writer.hpp"

#include <minibuild/layer/export.hpp>

#include <charconv>
#include <sys/stat.h>

namespace minibuild::layer {

namespace {

std::string_view oci_layer_media_type(oci::Compression compression) {
  switch (compression) {
  case oci::Compression::none:
    return oci::k_oci_layer_tar;
  case oci::Compression::gzip:
    return oci::k_oci_layer_tar_gzip;
  case oci::Compression::zstd:
    return oci::k_oci_layer_tar_zstd;
  }
  return oci::k_oci_layer_tar;
}

} // namespace

Result<ExportResult> export_layer(const std::string& root, const ExportOptions& options,
                                  ByteSink& sink) {
  MB_TRY_ASSIGN(int level, resolve_level(options.compression, options.level));
  // Check the root before any thread starts, so the common mistake fails plainly.
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) {
    return fail_errno(errno, "export layer: stat \"" + root + "\"");
  }
  if (!S_ISDIR(st.st_mode)) {
    return fail(Code::usage, "export layer: \"" + root + "\" is not a directory");
  }

  EncoderOptions encoder;
  encoder.compression = options.compression;
  encoder.level = level;
  encoder.threads = resolve_threads(options.threads);

  TarWriterOptions tar;
  tar.kind = options.kind;
  tar.source_date_epoch = options.source_date_epoch;
  tar.id_map = options.id_map;
  tar.owners = options.owners;

  TarWriterStats stats;
  auto encoded = encode_stream(
      encoder,
      [&](ByteSink& uncompressed) -> Result<void> {
        MB_TRY_ASSIGN(stats, write_tree_tar(root, tar, uncompressed));
        return {};
      },
      sink);
  if (!encoded) {
    return fail(std::move(encoded).error().wrap("export layer from \"" + root + "\""));
  }
  ExportResult result;
  result.diff_id = encoded->uncompressed_digest;
  result.digest = encoded->compressed_digest;
  result.size = encoded->compressed_size;
  result.uncompressed_size = encoded->uncompressed_size;
  result.media_type = std::string(oci_layer_media_type(options.compression));
  result.entries = stats.entries;
  result.warnings = std::move(stats.warnings);
  return result;
}

Result<std::optional<std::int64_t>> parse_source_date_epoch(std::string_view text) {
  if (text.empty()) {
    return std::optional<std::int64_t>();
  }
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || text[0] == '+') {
    return fail(Code::usage, "SOURCE_DATE_EPOCH \"" + std::string(text) +
                                 "\" is not a number of seconds since 1970-01-01 (UTC)");
  }
  return std::optional<std::int64_t>(value);
}

} // namespace minibuild::layer
