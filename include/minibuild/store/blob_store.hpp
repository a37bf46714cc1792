// The content-addressed blob store (CAS) contract (STYLE.md habit 11; umoci cas.Engine).
//
// A blob is an immutable byte string named by its digest. Manifests, indexes, configs and
// compressed layers are all blobs. The local store (LocalBlobStore, blobs/<alg>/<hex> under the
// store root) implements this interface; an OCI-layout writer can implement it too, and refs,
// walks and GC sit above it and know nothing about files.
//
// Semantics every implementation keeps:
//   - put is idempotent: success means "the content is stored under DIGEST", not "this call
//     wrote it". Putting an existing blob again rewrites nothing.
//   - put is atomic: a blob is visible under its name complete and durable, or not at all,
//     whatever happens to the process (see BlobWriter).
//   - get returns a reader that checks size and digest at end of stream, so bit rot on disk is
//     reported (Code::corrupt) rather than passed on.
//   - remove is idempotent: success means "the blob is not stored".
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/byte_sink.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/digest.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace minibuild::store {

/// What a blob is: the descriptor fields the store knows (it does not know media types).
struct BlobInfo {
  oci::Digest digest;
  std::uint64_t size = 0;

  bool operator==(const BlobInfo&) const = default;
};

/// What the caller already knows about content it is about to store (from a descriptor). Known
/// values are checked: a stream longer than `size` fails as soon as the excess arrives; a wrong
/// digest or a short stream fails at commit. The digest's algorithm decides how the writer
/// hashes (sha256 when no digest is given).
struct BlobExpectation {
  std::optional<oci::Digest> digest;
  std::optional<std::uint64_t> size;
};

/// Streams one new blob into the store: write() the bytes (it hashes as it writes), then
/// commit(). Only a successful commit() makes the blob visible; a writer destroyed without one
/// (an error, an exception, an early return) removes its temporary file, and a process killed
/// mid-write leaves only a temporary file that the next exclusive store operation deletes.
/// After any error the writer is dead: further writes and commit() fail. Not thread-safe.
class BlobWriter : public layer::ByteSink {
public:
  /// Checks the content against the expectation given when the writer was opened, makes it
  /// durable and visible under its digest, and returns its digest and size. When the blob is
  /// already stored, the temporary copy is dropped and nothing is rewritten. A mismatch fails
  /// with Code::corrupt (naming expected and actual digest and size) and stores nothing.
  virtual Result<BlobInfo> commit() = 0;

  /// Bytes accepted so far.
  virtual std::uint64_t bytes_written() const = 0;
};

/// The CAS interface. Implementations are not thread-safe (one per thread); several processes
/// may share one underlying store as the implementation documents.
class BlobStore {
public:
  virtual ~BlobStore() = default;

  /// Starts a new blob (see BlobWriter).
  virtual Result<std::unique_ptr<BlobWriter>> open_writer(const BlobExpectation& expected) = 0;

  /// A reader of a stored blob that checks its digest (and its size: `expected_size` when the
  /// caller knows it from a descriptor, the stored size otherwise) when it reaches the end:
  /// only a read() returning 0 confirms the content. A missing blob gives Code::not_found.
  virtual Result<std::unique_ptr<oci::VerifiedSource>>
  get(const oci::Digest& digest, std::optional<std::uint64_t> expected_size = std::nullopt) = 0;

  /// The size of a stored blob, or nullopt when it is not stored. Does not read the content.
  virtual Result<std::optional<BlobInfo>> stat(const oci::Digest& digest) = 0;

  /// Deletes a blob; a blob that is not there is success. The caller (GC) decides whether the
  /// blob is still needed: this call does not check.
  virtual Result<void> remove(const oci::Digest& digest) = 0;

  /// Every stored blob, sorted by digest.
  virtual Result<std::vector<oci::Digest>> list() = 0;

  /// Stores everything `source` yields (open_writer + write + commit). Idempotent and atomic
  /// as above.
  Result<BlobInfo> put(oci::ByteSource& source, const BlobExpectation& expected = {});

  /// Reads a whole stored blob into memory, verified; fails with Code::corrupt when it is larger
  /// than `max_bytes` (manifests and configs are small; layers are streamed with get()).
  Result<std::string> read(const oci::Digest& digest, std::size_t max_bytes);
};

} // namespace minibuild::store
