#include "encoder.hpp"

#include <minibuild/base/cpus.hpp>

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace minibuild::layer {

namespace {

constexpr int k_gzip_default_level = 6; // zlib's Z_DEFAULT_COMPRESSION
constexpr int k_zstd_default_level = 3; // ZSTD_CLEVEL_DEFAULT

// One block of the stream on its way through the pipeline. The producer fills `input`, a
// worker fills `output` and `crc`, the drainer consumes the job in index order.
struct Job {
  std::uint64_t index = 0;
  std::shared_ptr<const std::string> input;
  std::shared_ptr<const std::string> previous; // gzip: dictionary source
  bool last = false;
  std::string output;
  std::uint32_t crc = 0;
  bool done = false;
  std::optional<Error> error;
};

// RFC 1952 header with MTIME 0 (reproducible, like `gzip -n`), XFL from the level and OS 3
// (Unix) as GNU gzip and pigz write on Linux.
std::array<char, 10> gzip_header(int level) {
  char xfl = 0;
  if (level == 9) {
    xfl = 2;
  } else if (level == 1) {
    xfl = 4;
  }
  return {'\x1f', '\x8b', '\x08', '\x00', '\x00', '\x00', '\x00', '\x00', xfl, '\x03'};
}

std::array<char, 8> gzip_trailer(std::uint32_t crc, std::uint64_t size) {
  std::array<char, 8> trailer{};
  auto isize = static_cast<std::uint32_t>(size); // ISIZE is the size modulo 2^32
  for (int i = 0; i < 4; ++i) {
    trailer[static_cast<std::size_t>(i)] = static_cast<char>((crc >> (8 * i)) & 0xff);
    trailer[static_cast<std::size_t>(i + 4)] = static_cast<char>((isize >> (8 * i)) & 0xff);
  }
  return trailer;
}

class GzipBlockCompressor {
public:
  explicit GzipBlockCompressor(int level) : m_level(level) {}
  ~GzipBlockCompressor() {
    if (m_initialised) {
      deflateEnd(&m_stream);
    }
  }
  GzipBlockCompressor(const GzipBlockCompressor&) = delete;
  GzipBlockCompressor& operator=(const GzipBlockCompressor&) = delete;

  Result<void> compress(Job& job) {
    if (!m_initialised) {
      // Raw deflate (negative window bits): the gzip header and trailer are written once by
      // the drainer around the concatenated blocks.
      if (deflateInit2(&m_stream, m_level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return fail(Code::internal, "deflateInit2 failed");
      }
      m_initialised = true;
    } else if (deflateReset(&m_stream) != Z_OK) {
      return fail(Code::internal, "deflateReset failed");
    }
    const std::string& input = *job.input;
    if (job.previous && !job.previous->empty()) {
      const std::string& previous = *job.previous;
      std::size_t length = std::min(previous.size(), k_gzip_dictionary_size);
      const auto* dictionary =
          reinterpret_cast<const Bytef*>(previous.data() + previous.size() - length);
      if (deflateSetDictionary(&m_stream, dictionary, static_cast<uInt>(length)) != Z_OK) {
        return fail(Code::internal, "deflateSetDictionary failed");
      }
    }
    // deflateBound() covers one deflate() call with Z_FINISH; a sync flush adds at most an
    // empty stored block (5 bytes) on top. The loop grows the buffer should zlib disagree.
    // The worker's scratch buffer is reused (zero-filled once, not per block); the job gets
    // a copy of what was produced, a third of the input or less.
    std::size_t bound = deflateBound(&m_stream, input.size()) + 64;
    if (m_scratch.size() < bound) {
      m_scratch.resize(bound);
    }
    m_stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    m_stream.avail_in = static_cast<uInt>(input.size());
    std::size_t produced = 0;
    int flush = job.last ? Z_FINISH : Z_SYNC_FLUSH;
    while (true) {
      m_stream.next_out = reinterpret_cast<Bytef*>(m_scratch.data() + produced);
      m_stream.avail_out = static_cast<uInt>(m_scratch.size() - produced);
      int rc = deflate(&m_stream, flush);
      produced = m_scratch.size() - m_stream.avail_out;
      if (rc == Z_STREAM_ERROR) {
        return fail(Code::internal, "deflate failed");
      }
      bool finished = job.last ? rc == Z_STREAM_END : m_stream.avail_out != 0;
      if (finished) {
        break;
      }
      m_scratch.resize(m_scratch.size() * 2);
    }
    job.output.assign(m_scratch.data(), produced);
    job.crc = static_cast<std::uint32_t>(
        crc32_z(0, reinterpret_cast<const Bytef*>(input.data()), input.size()));
    return {};
  }

private:
  int m_level;
  z_stream m_stream{};
  bool m_initialised = false;
  std::string m_scratch;
};

class ZstdStreamCompressor {
public:
  ZstdStreamCompressor() : m_context(ZSTD_createCCtx()) {}
  ~ZstdStreamCompressor() { ZSTD_freeCCtx(m_context); }
  ZstdStreamCompressor(const ZstdStreamCompressor&) = delete;
  ZstdStreamCompressor& operator=(const ZstdStreamCompressor&) = delete;

  Result<void> init(int level, unsigned threads) {
    if (m_context == nullptr) {
      return fail(Code::internal, "ZSTD_createCCtx failed");
    }
    MB_TRY(check(ZSTD_CCtx_setParameter(m_context, ZSTD_c_compressionLevel, level)));
    MB_TRY(check(ZSTD_CCtx_setParameter(m_context, ZSTD_c_checksumFlag, 1)));
    // nbWorkers >= 1 even for one thread: single-threaded zstd (0) writes a different stream
    // than multi-threaded zstd, which is the same for every worker count.
    MB_TRY(check(ZSTD_CCtx_setParameter(m_context, ZSTD_c_nbWorkers, static_cast<int>(threads))));
    return {};
  }

  Result<void> compress(Job& job) {
    const std::string& input = *job.input;
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    while (in.pos < in.size) {
      MB_TRY(step(job.output, in, ZSTD_e_continue));
    }
    if (job.last) {
      ZSTD_inBuffer empty{nullptr, 0, 0};
      while (true) {
        MB_TRY_ASSIGN(std::size_t remaining, step(job.output, empty, ZSTD_e_end));
        if (remaining == 0) {
          break;
        }
      }
    }
    return {};
  }

private:
  static Result<std::size_t> check(std::size_t rc) {
    if (ZSTD_isError(rc)) {
      return fail(Code::internal, std::string("zstd: ") + ZSTD_getErrorName(rc));
    }
    return rc;
  }

  Result<std::size_t> step(std::string& output, ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    m_buffer.resize(ZSTD_CStreamOutSize());
    ZSTD_outBuffer out{m_buffer.data(), m_buffer.size(), 0};
    MB_TRY_ASSIGN(std::size_t remaining, check(ZSTD_compressStream2(m_context, &out, &in, mode)));
    output.append(m_buffer.data(), out.pos);
    return remaining;
  }

  ZSTD_CCtx* m_context;
  std::string m_buffer;
};

class Pipeline {
public:
  explicit Pipeline(const EncoderOptions& options) : m_options(options) {
    switch (options.compression) {
    case oci::Compression::gzip:
      m_capacity = 4 * static_cast<std::size_t>(options.threads) + 2;
      break;
    case oci::Compression::zstd:
    case oci::Compression::none:
      m_capacity = 8;
      break;
    }
  }

  ~Pipeline() { stop(); }
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  Result<void> start() {
    unsigned workers = 0;
    switch (m_options.compression) {
    case oci::Compression::gzip:
      workers = m_options.threads;
      break;
    case oci::Compression::zstd:
      workers = 1; // libzstd runs its own workers; this thread feeds it in order
      break;
    case oci::Compression::none:
      workers = 0;
      break;
    }
    try {
      for (unsigned i = 0; i < workers; ++i) {
        m_workers.emplace_back([this] { worker_loop(); });
      }
    } catch (const std::system_error& error) {
      stop();
      return fail(Code::internal, std::string("start compression thread: ") + error.what());
    }
    return {};
  }

  // Producer side: queues one block; blocks while the pipeline is full.
  Result<void> submit(std::string block, bool last) {
    std::unique_lock lock(m_mutex);
    m_space.wait(lock, [this] { return m_cancelled || m_ordered.size() < m_capacity; });
    if (m_cancelled) {
      return fail(Code::interrupted, "layer export cancelled: the blob sink failed");
    }
    auto job = std::make_shared<Job>();
    job->index = m_next_index++;
    job->input = std::make_shared<const std::string>(std::move(block));
    job->previous = m_options.compression == oci::Compression::gzip ? m_previous : nullptr;
    job->last = last;
    m_previous = job->input;
    m_ordered.push_back(job);
    if (m_options.compression == oci::Compression::none) {
      job->done = true;
      m_done.notify_all();
    } else {
      m_pending.push_back(job);
      m_work.notify_one();
    }
    return {};
  }

  // Producer side: no more blocks; `error` when the producer failed.
  void finish_input(std::optional<Error> error) {
    std::lock_guard lock(m_mutex);
    m_input_finished = true;
    m_producer_error = std::move(error);
    m_done.notify_all();
  }

  void cancel() {
    std::lock_guard lock(m_mutex);
    m_cancelled = true;
    m_space.notify_all();
  }

  // Consumer side, on the calling thread: writes the blob in order and hashes both streams.
  Result<EncodedStream> drain(ByteSink& out) {
    oci::Sha256Hasher uncompressed;
    oci::Sha256Hasher compressed;
    std::uint64_t uncompressed_size = 0;
    std::uint64_t compressed_size = 0;
    auto emit = [&](std::string_view bytes) -> Result<void> {
      compressed.update(bytes);
      compressed_size += bytes.size();
      return out.write(std::span<const char>(bytes.data(), bytes.size()));
    };
    bool gzip = m_options.compression == oci::Compression::gzip;
    uLong crc = crc32(0, nullptr, 0);
    if (gzip) {
      auto header = gzip_header(m_options.level);
      MB_TRY(emit(std::string_view(header.data(), header.size())));
    }
    while (true) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(m_mutex);
        m_done.wait(lock, [this] {
          return m_producer_error || (!m_ordered.empty() && m_ordered.front()->done) ||
                 (m_ordered.empty() && m_input_finished);
        });
        if (m_producer_error) {
          return fail(*m_producer_error);
        }
        if (m_ordered.empty()) {
          return fail(Code::internal, "layer producer stopped without an error or a last block");
        }
        job = m_ordered.front();
        m_ordered.pop_front();
        m_space.notify_all();
      }
      if (job->error) {
        return fail(*job->error);
      }
      const std::string& input = *job->input;
      uncompressed.update(std::string_view(input));
      uncompressed_size += input.size();
      if (m_options.compression == oci::Compression::none) {
        MB_TRY(emit(input));
      } else {
        MB_TRY(emit(job->output));
      }
      if (gzip) {
        crc = crc32_combine(crc, job->crc, static_cast<z_off_t>(input.size()));
      }
      if (job->last) {
        break;
      }
    }
    if (gzip) {
      auto trailer = gzip_trailer(static_cast<std::uint32_t>(crc), uncompressed_size);
      MB_TRY(emit(std::string_view(trailer.data(), trailer.size())));
    }
    EncodedStream result;
    result.uncompressed_digest = uncompressed.finish();
    result.uncompressed_size = uncompressed_size;
    result.compressed_digest = m_options.compression == oci::Compression::none
                                   ? result.uncompressed_digest
                                   : compressed.finish();
    result.compressed_size = compressed_size;
    return result;
  }

private:
  void stop() {
    {
      std::lock_guard lock(m_mutex);
      m_stopping = true;
      m_cancelled = true;
      m_work.notify_all();
      m_space.notify_all();
    }
    for (std::thread& worker : m_workers) {
      worker.join();
    }
    m_workers.clear();
  }

  void worker_loop() {
    std::optional<GzipBlockCompressor> gzip;
    std::optional<ZstdStreamCompressor> zstd;
    std::optional<Error> setup_error;
    if (m_options.compression == oci::Compression::gzip) {
      gzip.emplace(m_options.level);
    } else {
      zstd.emplace();
      auto ok = zstd->init(m_options.level, m_options.threads);
      if (!ok) {
        setup_error = ok.error();
      }
    }
    while (true) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(m_mutex);
        m_work.wait(lock, [this] { return m_stopping || !m_pending.empty(); });
        if (m_stopping) {
          return;
        }
        job = m_pending.front();
        m_pending.pop_front();
      }
      Result<void> ok = setup_error ? Result<void>(fail(*setup_error))
                        : gzip      ? gzip->compress(*job)
                                    : zstd->compress(*job);
      std::lock_guard lock(m_mutex);
      if (!ok) {
        job->error = ok.error();
      }
      job->done = true;
      m_done.notify_all();
    }
  }

  EncoderOptions m_options;
  std::size_t m_capacity = 8;
  std::mutex m_mutex;
  std::condition_variable m_work;  // workers: a job is pending, or stop
  std::condition_variable m_done;  // drainer: the front job is done, or the producer ended
  std::condition_variable m_space; // producer: room in the pipeline, or cancel
  std::deque<std::shared_ptr<Job>> m_ordered; // every job not yet drained, in stream order
  std::deque<std::shared_ptr<Job>> m_pending; // jobs no worker has taken yet
  std::shared_ptr<const std::string> m_previous;
  std::uint64_t m_next_index = 0;
  bool m_input_finished = false;
  bool m_cancelled = false;
  bool m_stopping = false;
  std::optional<Error> m_producer_error;
  std::vector<std::thread> m_workers;
};

// The producer's view of the pipeline: cuts the stream into fixed-size blocks. A full block
// is submitted only once more bytes arrive, so the last block is always known to be last
// (and a stream that ends on a block boundary needs no empty final block).
class BlockInput : public ByteSink {
public:
  BlockInput(Pipeline& pipeline, std::size_t block_size)
      : m_pipeline(pipeline), m_block_size(block_size) {
    m_current.reserve(block_size);
  }

  Result<void> write(std::span<const char> bytes) override {
    while (!bytes.empty()) {
      if (m_current.size() == m_block_size) {
        MB_TRY(m_pipeline.submit(std::exchange(m_current, std::string()), false));
        m_current.reserve(m_block_size);
      }
      std::size_t length = std::min(m_block_size - m_current.size(), bytes.size());
      m_current.append(bytes.data(), length);
      bytes = bytes.subspan(length);
    }
    return {};
  }

  Result<void> close() { return m_pipeline.submit(std::move(m_current), true); }

private:
  Pipeline& m_pipeline;
  std::size_t m_block_size;
  std::string m_current;
};

} // namespace

Result<int> resolve_level(oci::Compression compression, std::optional<int> level) {
  switch (compression) {
  case oci::Compression::none:
    return 0;
  case oci::Compression::gzip:
    if (!level) {
      return k_gzip_default_level;
    }
    if (*level < 1 || *level > 9) {
      return fail(Code::usage,
                  "gzip compression level " + std::to_string(*level) + " is not in 1..9");
    }
    return *level;
  case oci::Compression::zstd:
    if (!level) {
      return k_zstd_default_level;
    }
    if (*level < 1 || *level > 19) {
      return fail(Code::usage,
                  "zstd compression level " + std::to_string(*level) + " is not in 1..19");
    }
    return *level;
  }
  return fail(Code::internal, "unknown compression");
}

unsigned resolve_threads(unsigned threads) {
  return threads > 0 ? threads : usable_cpus();
}

Result<EncodedStream> encode_stream(const EncoderOptions& options, const Producer& produce,
                                    ByteSink& out) {
  if (options.threads == 0) {
    return fail(Code::internal, "encode_stream needs at least one thread");
  }
  Pipeline pipeline(options);
  MB_TRY(pipeline.start());
  std::size_t block_size =
      options.compression == oci::Compression::gzip ? k_gzip_block_size : k_stream_block_size;
  BlockInput input(pipeline, block_size);
  std::thread producer;
  try {
    producer = std::thread([&] {
      Result<void> ok = produce(input);
      if (ok) {
        ok = input.close();
      }
      pipeline.finish_input(ok ? std::nullopt : std::optional<Error>(ok.error()));
    });
  } catch (const std::system_error& error) {
    return fail(Code::internal, std::string("start layer producer thread: ") + error.what());
  }
  Result<EncodedStream> result = pipeline.drain(out);
  if (!result) {
    pipeline.cancel();
  }
  producer.join();
  return result;
}

} // namespace minibuild::layer
