// The compression pipeline behind export_layer(): one producer thread writes the uncompressed
// tar, workers compress fixed-size blocks, and the calling thread hashes both streams and
// writes the blob to the sink in order.
//
// gzip is compressed pigz-style: the input is cut into k_gzip_block_size blocks, each block is
// a raw deflate stream primed with the last 32 KiB of the previous block as dictionary, ended
// with Z_SYNC_FLUSH (Z_FINISH for the last block); the pieces concatenate into one deflate
// stream behind one gzip header, and the CRC-32 is combined with crc32_combine(). Block
// boundaries depend only on the input, so the output is the same for any thread count.
// zstd uses libzstd's own workers (ZSTD_c_nbWorkers >= 1), whose streaming output does not
// depend on the worker count (facebook/zstd#2238, #2327), as long as the stream never starts
// with ZSTD_e_end; the encoder always feeds input with ZSTD_e_continue first.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/byte_sink.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

namespace minibuild::layer {

inline constexpr std::size_t k_gzip_block_size = 128 * 1024;
inline constexpr std::size_t k_gzip_dictionary_size = 32 * 1024;
/// zstd and uncompressed streams move through the pipeline in blocks of this size.
inline constexpr std::size_t k_stream_block_size = 1024 * 1024;

struct EncoderOptions {
  oci::Compression compression = oci::Compression::gzip;
  int level = 6;        ///< validated by resolve_level()
  unsigned threads = 1; ///< >= 1
};

/// Digests and sizes of both sides of an encoded stream.
struct EncodedStream {
  oci::Digest uncompressed_digest;
  oci::Digest compressed_digest;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t compressed_size = 0;
};

/// Writes the uncompressed stream into the sink it is given; runs on the producer thread.
using Producer = std::function<Result<void>(ByteSink& uncompressed)>;

/// Runs `produce` on a new thread and encodes what it writes into `out`, which is written
/// only from the calling thread. If `out` fails, the producer's next write fails and the
/// producer is joined before returning. A producer error is returned as is.
Result<EncodedStream> encode_stream(const EncoderOptions& options, const Producer& produce,
                                    ByteSink& out);

/// The level to use: `level` when it is valid for `compression`, the default when it is not
/// set; Code::usage when it is out of range (gzip 1..9, zstd 1..19; none ignores it).
Result<int> resolve_level(oci::Compression compression, std::optional<int> level);

/// `threads`, or the number of CPUs this process may run on when it is 0 (at least 1).
unsigned resolve_threads(unsigned threads);

} // namespace minibuild::layer
