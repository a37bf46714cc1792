#include "parallel.hpp"

#include <minibuild/layer/apply.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/pull.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

namespace minibuild::registry {

namespace {

constexpr std::size_t k_max_config = 16 << 20;
// Compressed bytes buffered between a download and its extraction. Enough to ride out a burst
// of slow disk writes on the extraction side without stalling the network, small enough that
// four parallel downloads stay well under 50 MB.
constexpr std::size_t k_pipe_capacity = 8 << 20;
// Attempts for one blob whose content turns out corrupt: the first one and two retries.
constexpr int k_corrupt_attempts = 3;

// The bare media type of a Content-Type value ("application/json; charset=utf-8").
std::string bare_media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t')) {
    content_type.remove_suffix(1);
  }
  while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t')) {
    content_type.remove_prefix(1);
  }
  return std::string(content_type);
}

// What a manifest document is. The Content-Type decides when it names a manifest or index;
// some registries (and static file servers behind them) answer "application/json" or nothing,
// and then the document's own mediaType, or failing that its shape, tells.
Result<std::string> document_media_type(const FetchedManifest& fetched) {
  std::string type = bare_media_type(fetched.media_type);
  if (!oci::is_manifest(type) && !oci::is_index(type)) {
    const auto sniffed = oci::sniff_media_type(fetched.bytes);
    if (!sniffed) {
      return fail(Code::corrupt, "manifest " + fetched.digest.to_string() +
                                     " is not a JSON object (served as \"" + fetched.media_type +
                                     "\")");
    }
    if (!sniffed->empty()) {
      type = *sniffed;
    }
  }
  if (oci::is_manifest(type) || oci::is_index(type)) {
    return type;
  }
  if (type == oci::k_docker_schema1_manifest || type == oci::k_docker_schema1_signed_manifest) {
    return fail(Code::unsupported, "manifest " + fetched.digest.to_string() +
                                       " is a Docker schema 1 manifest, which minibuild does "
                                       "not support");
  }
  return fail(Code::unsupported, "manifest " + fetched.digest.to_string() + " has media type \"" +
                                     type + "\", neither an image manifest nor an index");
}

// Options for unpacking pulled layers: owners set when possible and otherwise recorded in an
// xattr, device nodes skipped (as the build executor applies base layers), and whiteouts kept
// in overlay form, because the unpacked tree is an overlay lower dir of RUN steps.
layer::ApplyOptions apply_options() {
  layer::ApplyOptions options;
  options.record_owners = true;
  options.whiteouts = layer::WhiteoutStyle::overlay;
  return options;
}

Error cancelled_error() {
  return Error(Code::interrupted, "cancelled because another download failed");
}

// A bounded, in-process byte pipe between a download (the writer) and an extraction (the
// reader): chunks are copied in as they arrive from the network and handed out to whatever
// read size the reader asks for. The writer blocks while `capacity` bytes are buffered.
// Either side may abort it with an error, which wakes and fails the other side: that is how
// an extraction error stops the download and a download error stops the extraction, without
// either blocking forever.
class BytePipe {
public:
  explicit BytePipe(std::size_t capacity) : m_capacity(capacity) {}

  Result<void> write(std::span<const char> bytes) {
    if (bytes.empty()) {
      return {};
    }
    std::unique_lock lock(m_mutex);
    // A chunk larger than the whole capacity is still accepted once the pipe is empty.
    m_not_full.wait(lock, [&] {
      return m_error || m_buffered == 0 || m_buffered + bytes.size() <= m_capacity;
    });
    if (m_error) {
      return fail(*m_error);
    }
    m_chunks.emplace_back(bytes.data(), bytes.size());
    m_buffered += bytes.size();
    m_not_empty.notify_one();
    return {};
  }

  /// The writer is done: the reader sees end of stream once it has read everything.
  void close() {
    std::lock_guard lock(m_mutex);
    m_closed = true;
    m_not_empty.notify_all();
  }

  /// Fails both sides from now on. The first error stays: returns false when the pipe was
  /// already aborted.
  bool abort(Error error) {
    std::lock_guard lock(m_mutex);
    const bool first = !m_error;
    if (first) {
      m_error = std::move(error);
    }
    m_chunks.clear();
    m_buffered = 0;
    m_not_empty.notify_all();
    m_not_full.notify_all();
    return first;
  }

  Result<std::size_t> read(std::span<char> buffer) {
    if (buffer.empty()) {
      return std::size_t{0};
    }
    std::unique_lock lock(m_mutex);
    m_not_empty.wait(lock, [&] { return m_error || !m_chunks.empty() || m_closed; });
    if (m_error) {
      return fail(*m_error);
    }
    std::size_t done = 0;
    while (done < buffer.size() && !m_chunks.empty()) {
      const std::string& front = m_chunks.front();
      const std::size_t count = std::min(buffer.size() - done, front.size() - m_offset);
      std::copy_n(front.data() + m_offset, count, buffer.data() + done);
      done += count;
      m_offset += count;
      if (m_offset == front.size()) {
        m_buffered -= front.size();
        m_chunks.pop_front();
        m_offset = 0;
      }
    }
    if (done > 0) {
      m_not_full.notify_one();
    }
    return done; // 0 only when closed and empty
  }

private:
  std::mutex m_mutex;
  std::condition_variable m_not_full;
  std::condition_variable m_not_empty;
  std::deque<std::string> m_chunks;
  std::size_t m_offset = 0;   // read position in m_chunks.front()
  std::size_t m_buffered = 0; // bytes in m_chunks, including the read part of the front
  std::size_t m_capacity;
  bool m_closed = false;
  std::optional<Error> m_error;
};

class PipeSource : public oci::ByteSource {
public:
  explicit PipeSource(BytePipe& pipe) : m_pipe(pipe) {}
  Result<std::size_t> read(std::span<char> buffer) override { return m_pipe.read(buffer); }

private:
  BytePipe& m_pipe;
};

// The pull-wide cancellation: a flag the download sinks check on every chunk, plus the pipes
// in use, aborted at once so that an extraction waiting for data wakes up.
class Cancellation {
public:
  bool cancelled() const { return m_cancelled.load(std::memory_order_relaxed); }

  void cancel() {
    std::lock_guard lock(m_mutex);
    m_cancelled = true;
    for (BytePipe* pipe : m_pipes) {
      pipe->abort(cancelled_error());
    }
  }

  // Keeps `pipe` known while it lives (a pipe registered after cancel() is aborted at once).
  class Registration {
  public:
    Registration(Cancellation& owner, BytePipe& pipe) : m_owner(owner), m_pipe(pipe) {
      std::lock_guard lock(m_owner.m_mutex);
      m_owner.m_pipes.insert(&m_pipe);
      if (m_owner.m_cancelled) {
        m_pipe.abort(cancelled_error());
      }
    }
    ~Registration() {
      std::lock_guard lock(m_owner.m_mutex);
      m_owner.m_pipes.erase(&m_pipe);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

  private:
    Cancellation& m_owner;
    BytePipe& m_pipe;
  };

private:
  std::atomic<bool> m_cancelled{false};
  std::mutex m_mutex;
  std::set<BytePipe*> m_pipes;
};

// Where downloaded bytes go: always the store's blob writer (which hashes them and checks the
// expected size), and optionally the extraction pipe and an in-memory copy (the config).
class TeeSink : public layer::ByteSink {
public:
  TeeSink(layer::ByteSink& blob, const Cancellation& cancellation)
      : m_blob(blob), m_cancellation(cancellation) {}

  void also_to(BytePipe* pipe) { m_pipe = pipe; }
  void also_to(std::string* copy) { m_copy = copy; }
  void count_in(std::atomic<std::uint64_t>* counter) { m_counter = counter; }

  Result<void> write(std::span<const char> bytes) override {
    if (m_cancellation.cancelled()) {
      return fail(cancelled_error());
    }
    if (m_counter != nullptr) {
      m_counter->fetch_add(bytes.size(), std::memory_order_relaxed);
    }
    MB_TRY(m_blob.write(bytes));
    if (m_copy != nullptr) {
      m_copy->append(bytes.data(), bytes.size());
    }
    if (m_pipe != nullptr) {
      MB_TRY(m_pipe->write(bytes));
    }
    return {};
  }

private:
  layer::ByteSink& m_blob;
  const Cancellation& m_cancellation;
  BytePipe* m_pipe = nullptr;
  std::string* m_copy = nullptr;
  std::atomic<std::uint64_t>* m_counter = nullptr;
};

// One layer to fetch: a distinct blob of the manifest and the diffID the config gives it.
struct LayerTask {
  oci::Descriptor blob;
  oci::Digest diff_id;
};

// The state one pull shares between its calling thread and its download workers.
class Puller {
public:
  Puller(RegistryClient& client, store::Store& store, std::string repository,
         const PullOptions& options)
      : m_client(client), m_store(store), m_repository(std::move(repository)), m_options(options) {}

  // The config blob's bytes, from the store when it is there, else downloaded and stored.
  Result<std::string> config(const oci::Descriptor& descriptor);

  // Brings every layer into the store (blob stored and tree unpacked), in parallel.
  Result<void> layers(const std::vector<LayerTask>& tasks);

  std::uint64_t downloaded_bytes() const { return m_downloaded.load(); }
  std::size_t layers_present() const { return m_present.load(); }

private:
  template <typename Attempt>
  Result<void> with_retries(const oci::Descriptor& blob, bool is_layer, const Attempt& attempt);
  Result<void> layer(const LayerTask& task);
  Result<void> layer_once(const LayerTask& task);
  Result<void> fetch_blob_only(const oci::Descriptor& blob);
  Result<void> stream_layer(const LayerTask& task, const std::string& target);
  TransferProgress progress_of(const oci::Descriptor& blob) const;

  RegistryClient& m_client;
  store::Store& m_store;
  std::string m_repository;
  const PullOptions& m_options;
  Cancellation m_cancellation;
  std::atomic<std::uint64_t> m_downloaded{0};
  std::atomic<std::size_t> m_present{0};
};

TransferProgress Puller::progress_of(const oci::Descriptor& blob) const {
  if (m_options.progress == nullptr) {
    return {};
  }
  PullProgress* progress = m_options.progress;
  return [progress, &blob](std::uint64_t bytes) { progress->layer_progress(blob, bytes); };
}

// Corrupt content (a digest or diffID mismatch, a broken gzip stream) is usually a transfer
// problem — a flaky proxy, a CDN edge serving a truncated object — so it is worth fetching
// again from scratch; anything else (network errors the client already retried, auth, a full
// disk) is not.
template <typename Attempt>
Result<void> Puller::with_retries(const oci::Descriptor& blob, bool is_layer,
                                  const Attempt& attempt) {
  for (int number = 1;; ++number) {
    if (m_cancellation.cancelled()) {
      return fail(cancelled_error());
    }
    auto done = attempt();
    if (done) {
      return {};
    }
    if (done.error().code() != Code::corrupt || m_cancellation.cancelled()) {
      return done;
    }
    if (number == k_corrupt_attempts) {
      return fail(
          std::move(done).error().wrap("giving up after " + std::to_string(number) + " attempts"));
    }
    if (is_layer && m_options.progress != nullptr) {
      m_options.progress->layer_retry(blob, done.error().what());
    }
  }
}

Result<std::string> Puller::config(const oci::Descriptor& descriptor) {
  const std::string what = "config " + descriptor.digest.to_string();
  if (descriptor.size < 0 || static_cast<std::uint64_t>(descriptor.size) > k_max_config) {
    return fail(Code::unsupported, what + " is " + std::to_string(descriptor.size) +
                                       " bytes; minibuild reads configs up to " +
                                       std::to_string(k_max_config));
  }
  const auto size = static_cast<std::uint64_t>(descriptor.size);
  MB_TRY_ASSIGN(auto stored, m_store.blobs().stat(descriptor.digest));
  if (stored && stored->size == size) {
    auto bytes = m_store.blobs().read(descriptor.digest, k_max_config);
    if (!bytes) {
      return fail(std::move(bytes).error().wrap(what));
    }
    return std::move(*bytes);
  }
  std::string bytes;
  auto fetched = with_retries(descriptor, /*is_layer=*/false, [&]() -> Result<void> {
    bytes.clear();
    MB_TRY_ASSIGN(auto writer, m_store.blobs().open_writer({descriptor.digest, size}));
    TeeSink sink(*writer, m_cancellation);
    sink.also_to(&bytes);
    MB_TRY(m_client.fetch_blob(m_repository, descriptor, sink));
    MB_TRY(writer->commit());
    return {};
  });
  if (!fetched) {
    return fail(std::move(fetched).error().wrap(what));
  }
  return bytes;
}

Result<void> Puller::layers(const std::vector<LayerTask>& tasks) {
  return run_parallel(
      tasks.size(), static_cast<std::size_t>(std::max(1, m_options.max_concurrent_downloads)),
      [&](std::size_t index) { return layer(tasks[index]); },
      [&](std::size_t index) { return "layer " + tasks[index].blob.digest.to_string(); },
      [&] { m_cancellation.cancel(); });
}

Result<void> Puller::layer(const LayerTask& task) {
  return with_retries(task.blob, /*is_layer=*/true, [&] { return layer_once(task); });
}

Result<void> Puller::layer_once(const LayerTask& task) {
  MB_TRY_ASSIGN(auto blob_stat, m_store.blobs().stat(task.blob.digest));
  MB_TRY_ASSIGN(auto layer_stat, m_store.layers().stat(task.diff_id));
  if (blob_stat) {
    if (!layer_stat) {
      // The blob is here (a build, an earlier pull interrupted after its download): unpacking
      // it needs no network. The verifying reader and the diffID check guard the content.
      MB_TRY(
          m_store.layers().unpack_blob(task.diff_id, m_store.blobs(), task.blob, apply_options()));
    }
    m_present.fetch_add(1);
    if (m_options.progress != nullptr) {
      m_options.progress->layer_present(task.blob);
    }
    return {};
  }

  if (m_options.progress != nullptr) {
    m_options.progress->layer_started(task.blob);
  }
  if (layer_stat) {
    // The tree exists (built locally, or another blob with the same content), the blob not:
    // the store keeps both, so fetch just the blob.
    MB_TRY(fetch_blob_only(task.blob));
  } else {
    bool extracted = false;
    MB_TRY(m_store.layers().unpack(task.diff_id, task.blob.digest,
                                   [&](const std::string& target) -> Result<void> {
                                     extracted = true;
                                     return stream_layer(task, target);
                                   }));
    if (!extracted) {
      // Another process unpacked the layer between our stat and unpack.
      MB_TRY_ASSIGN(auto stored, m_store.blobs().stat(task.blob.digest));
      if (!stored) {
        MB_TRY(fetch_blob_only(task.blob));
      }
    }
  }
  if (m_options.progress != nullptr) {
    m_options.progress->layer_done(task.blob);
  }
  return {};
}

Result<void> Puller::fetch_blob_only(const oci::Descriptor& blob) {
  MB_TRY_ASSIGN(auto writer,
                m_store.blobs().open_writer({blob.digest, static_cast<std::uint64_t>(blob.size)}));
  TeeSink sink(*writer, m_cancellation);
  sink.count_in(&m_downloaded);
  MB_TRY(m_client.fetch_blob(m_repository, blob, sink, progress_of(blob)));
  MB_TRY(writer->commit());
  return {};
}

// Downloads the layer blob and unpacks it into `target` at the same time: this thread runs
// the extraction on the reading end of a pipe, a second thread runs the download, which
// writes every chunk both to the blob file and into the pipe. The layer is only accepted (and
// LayerStore then renames the tree into place) when the whole blob arrived with its digest
// and the tar hashed to the expected diffID.
Result<void> Puller::stream_layer(const LayerTask& task, const std::string& target) {
  MB_TRY_ASSIGN(auto writer, m_store.blobs().open_writer(
                                 {task.blob.digest, static_cast<std::uint64_t>(task.blob.size)}));
  BytePipe pipe(k_pipe_capacity);
  Cancellation::Registration registration(m_cancellation, pipe);

  Result<void> fetched;
  const TransferProgress progress = progress_of(task.blob);
  std::thread producer;
  try {
    producer = std::thread([&] {
      TeeSink sink(*writer, m_cancellation);
      sink.also_to(&pipe);
      sink.count_in(&m_downloaded);
      fetched = m_client.fetch_blob(m_repository, task.blob, sink, progress);
      if (fetched) {
        pipe.close();
      } else {
        pipe.abort(fetched.error());
      }
    });
  } catch (const std::system_error& error) {
    return fail(Code::internal, std::string("start download thread: ") + error.what());
  }
  // Whatever happens below, the download must be stopped and joined before `pipe`, `writer`
  // and `fetched` go away.
  struct Join {
    std::thread& thread;
    BytePipe& pipe;
    ~Join() {
      if (thread.joinable()) {
        pipe.abort(Error(Code::internal, "layer extraction ended"));
        thread.join();
      }
    }
  } join{producer, pipe};

  PipeSource source(pipe);
  auto applied = layer::apply_layer(source, target, apply_options());
  bool stopped_download = false;
  if (applied) {
    // apply_layer reads to the end of the stream; should it ever stop at the tar's end-of-
    // archive marker, the rest still has to reach the blob file for the digest to be checked.
    std::vector<char> rest(64 * 1024);
    for (;;) {
      auto count = source.read(rest);
      if (!count) {
        applied = fail(std::move(count).error());
        break;
      }
      if (*count == 0) {
        break;
      }
    }
  } else {
    // The extraction failed: make the download's next write fail so it stops now. When the
    // pipe was already aborted, the download (or the pull's cancellation) failed first and
    // the extraction only saw that.
    stopped_download = pipe.abort(Error(Code::internal, "layer extraction failed"));
  }
  producer.join();

  // The root cause: the download's error unless it failed only because we stopped it.
  if (!fetched && !stopped_download) {
    return fail(std::move(fetched).error().wrap("download blob"));
  }
  if (!applied) {
    return fail(std::move(applied).error());
  }
  auto committed = writer->commit();
  if (!committed) {
    return fail(std::move(committed).error().wrap("store blob"));
  }
  if (applied->diff_id != task.diff_id) {
    return fail(Code::corrupt, "blob unpacks to diffID " + applied->diff_id.to_string() +
                                   ", the config says " + task.diff_id.to_string());
  }
  return {};
}

Result<void> check_layer(const oci::Descriptor& layer) {
  const std::string what = "layer " + layer.digest.to_string();
  if (oci::is_nondistributable_layer(layer.media_type) || !layer.urls.empty()) {
    return fail(Code::unsupported,
                what + " is a non-distributable (foreign) layer (" + layer.media_type +
                    "), fetched from other URLs, which minibuild does not support");
  }
  if (!oci::is_layer(layer.media_type)) {
    return fail(Code::unsupported,
                what + " has media type \"" + layer.media_type + "\", not a filesystem layer");
  }
  if (layer.size < 0) {
    return fail(Code::corrupt, what + " has a negative size");
  }
  return {};
}

// Stores a manifest or index blob exactly as it was received.
Result<void> store_document(store::Store& store, const FetchedManifest& document) {
  MB_TRY_ASSIGN(auto writer,
                store.blobs().open_writer(
                    {document.digest, static_cast<std::uint64_t>(document.bytes.size())}));
  MB_TRY(writer->write(std::span<const char>(document.bytes.data(), document.bytes.size())));
  MB_TRY(writer->commit());
  return {};
}

} // namespace

Result<oci::Descriptor> select_platform(std::string_view index_bytes,
                                        const oci::Platform& platform) {
  auto index = oci::parse<oci::ImageIndex>(index_bytes);
  if (!index) {
    return fail(std::move(index).error().wrap("read index"));
  }
  const auto found = oci::find_manifests(*index, platform);
  // An index may list, for one platform, an image manifest and (in theory) a nested index;
  // prefer the manifest.
  for (const auto& candidate : found) {
    if (oci::is_manifest(candidate.media_type)) {
      return candidate;
    }
  }
  if (!found.empty()) {
    return found.front();
  }
  std::vector<std::string> offered;
  for (const auto& entry : index->manifests) {
    if (entry.platform) {
      std::string name = oci::to_string(*entry.platform);
      if (std::find(offered.begin(), offered.end(), name) == offered.end()) {
        offered.push_back(std::move(name));
      }
    }
  }
  std::string message = "no manifest for platform " + oci::to_string(platform) + " in the index";
  if (offered.empty()) {
    message += ", which names no platforms";
  } else {
    message += "; it offers ";
    for (std::size_t i = 0; i < offered.size(); ++i) {
      message += (i == 0 ? "" : ", ") + offered[i];
    }
  }
  return fail(Code::not_found, std::move(message));
}

Result<PulledImage> pull_image(RegistryClient& client, store::Store& store,
                               const Reference& reference, const PullOptions& options) {
  const std::string& repository = reference.path;
  const std::string wanted = reference.digest ? reference.digest->to_string()
                                              : reference.tag.value_or(std::string(k_default_tag));
  MB_TRY_ASSIGN(FetchedManifest top, client.get_manifest(repository, wanted));
  if (reference.digest && top.digest != *reference.digest) {
    return fail(Code::corrupt,
                "the registry answered " + wanted + " with manifest " + top.digest.to_string());
  }
  MB_TRY_ASSIGN(const std::string top_type, document_media_type(top));

  PulledImage pulled;
  pulled.reference = reference;
  pulled.target.media_type = top_type;
  pulled.target.digest = top.digest;
  pulled.target.size = static_cast<std::int64_t>(top.bytes.size());

  std::optional<FetchedManifest> index;
  FetchedManifest manifest_document;
  if (oci::is_index(top_type)) {
    auto chosen = select_platform(top.bytes, options.platform);
    if (!chosen) {
      return fail(std::move(chosen).error().wrap("index " + top.digest.to_string()));
    }
    if (!oci::is_manifest(chosen->media_type)) {
      return fail(Code::unsupported,
                  "index " + top.digest.to_string() + " names " + chosen->digest.to_string() +
                      " of media type \"" + chosen->media_type + "\" for platform " +
                      oci::to_string(options.platform) + ", not an image manifest");
    }
    MB_TRY_ASSIGN(manifest_document, client.get_manifest(repository, chosen->digest.to_string()));
    if (manifest_document.digest != chosen->digest ||
        manifest_document.bytes.size() != static_cast<std::uint64_t>(chosen->size)) {
      return fail(Code::corrupt, "manifest " + chosen->digest.to_string() + " of " +
                                     std::to_string(chosen->size) + " bytes arrived as " +
                                     manifest_document.digest.to_string() + " of " +
                                     std::to_string(manifest_document.bytes.size()) + " bytes");
    }
    if (!oci::is_manifest(bare_media_type(manifest_document.media_type))) {
      manifest_document.media_type = chosen->media_type;
    }
    MB_TRY_ASSIGN(const std::string child_type, document_media_type(manifest_document));
    if (!oci::is_manifest(child_type)) {
      return fail(Code::unsupported, "manifest " + chosen->digest.to_string() +
                                         " is a nested index, which minibuild does not support");
    }
    index = std::move(top);
  } else {
    manifest_document = std::move(top);
  }
  pulled.manifest_digest = manifest_document.digest;

  auto manifest = oci::parse<oci::ImageManifest>(manifest_document.bytes);
  if (!manifest) {
    return fail(std::move(manifest).error().wrap("manifest " + pulled.manifest_digest.to_string()));
  }
  pulled.manifest = std::move(*manifest);
  if (!oci::is_config(pulled.manifest.config.media_type)) {
    return fail(Code::unsupported, "manifest " + pulled.manifest_digest.to_string() +
                                       " has a config of media type \"" +
                                       pulled.manifest.config.media_type +
                                       "\": it is not a container image");
  }
  std::uint64_t total_bytes = 0;
  for (const auto& layer : pulled.manifest.layers) {
    MB_TRY(check_layer(layer));
    total_bytes += static_cast<std::uint64_t>(layer.size);
  }

  Puller puller(client, store, repository, options);
  MB_TRY_ASSIGN(const std::string config_bytes, puller.config(pulled.manifest.config));
  auto config = oci::parse<oci::ImageConfig>(config_bytes);
  if (!config) {
    return fail(
        std::move(config).error().wrap("config " + pulled.manifest.config.digest.to_string()));
  }
  pulled.config = std::move(*config);
  const auto& diff_ids = pulled.config.rootfs.diff_ids;
  if (diff_ids.size() != pulled.manifest.layers.size()) {
    return fail(Code::corrupt, "config " + pulled.manifest.config.digest.to_string() + " lists " +
                                   std::to_string(diff_ids.size()) + " diffIDs for " +
                                   std::to_string(pulled.manifest.layers.size()) + " layers");
  }
  if (options.progress != nullptr) {
    options.progress->resolved(reference, pulled.manifest_digest, pulled.manifest.layers.size(),
                               total_bytes);
  }

  // One task per distinct blob: images repeat layers (the same empty layer several times).
  std::vector<LayerTask> tasks;
  std::map<oci::Digest, oci::Digest> diff_id_of_blob;
  for (std::size_t i = 0; i < pulled.manifest.layers.size(); ++i) {
    const auto& layer = pulled.manifest.layers[i];
    const auto [known, inserted] = diff_id_of_blob.emplace(layer.digest, diff_ids[i]);
    if (inserted) {
      tasks.push_back({layer, diff_ids[i]});
    } else if (known->second != diff_ids[i]) {
      return fail(Code::corrupt, "config " + pulled.manifest.config.digest.to_string() +
                                     " gives layer " + layer.digest.to_string() + " two diffIDs, " +
                                     known->second.to_string() + " and " + diff_ids[i].to_string());
    }
  }
  MB_TRY(puller.layers(tasks));
  pulled.downloaded_bytes = puller.downloaded_bytes();
  pulled.layers_present = puller.layers_present();

  // Only now, with everything they reference in place, the documents and the name.
  MB_TRY(store_document(store, manifest_document));
  if (index) {
    MB_TRY(store_document(store, *index));
  }
  if (options.record_name && reference.tag) {
    MB_TRY(store.names().tag(reference.repository() + ":" + *reference.tag, pulled.target.digest,
                             pulled.target.media_type));
  }
  return pulled;
}

} // namespace minibuild::registry
