// The registry API client (OCI distribution-spec, Docker Registry HTTP API v2) for one
// registry host: manifests, blobs, uploads, mounts. It owns the protocol rules the transport
// does not know:
//   - scheme: https; http:// only when HostSettings::allow_plain_http and the peer does not
//     speak TLS (the choice is remembered for the client's life);
//   - auth: a request goes out with the Authenticator's header for its scope; a 401 asks the
//     Authenticator once to refresh (new token / Basic) and repeats the request once;
//   - redirects (blob downloads are often redirected to object storage) are followed up to 5
//     hops; the Authorization header is sent only to the registry host itself;
//   - retries (retry.hpp) on transport errors and retryable statuses, with backoff; a blob
//     download interrupted after N bytes resumes with `Range: bytes=N-` (a 206 with the
//     matching Content-Range continues the stream; a 200 is read past its first N bytes), so
//     the sink sees every byte exactly once, in order;
//   - error answers become Errors naming the operation, the repository and the object, with
//     the registry's error code and message (the JSON `errors` array) when it sent one:
//     404/MANIFEST_UNKNOWN/BLOB_UNKNOWN/NAME_UNKNOWN → Code::not_found, 401/403 after
//     refreshing → Code::auth, anything else → Code::network.
// Thread-safe: a pull's parallel layer downloads share one client.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/byte_sink.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/registry/auth.hpp>
#include <minibuild/registry/hosts.hpp>
#include <minibuild/registry/http.hpp>
#include <minibuild/registry/retry.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace minibuild::registry {

struct ClientOptions {
  RetryPolicy retry;
  /// Blobs up to this size are uploaded in one PUT (POST then PUT ?digest=); larger ones in
  /// PATCH chunks of chunk_size with Content-Range. If the registry refuses a chunked PATCH
  /// (400/405/416 on the first chunk), the upload restarts monolithic, and vice versa
  /// (413 on a monolithic PUT → chunked).
  std::uint64_t monolithic_limit = 32ull << 20;
  std::uint64_t chunk_size = 16ull << 20;
  /// Sleeps between retries; tests replace it.
  std::function<void(std::chrono::milliseconds)> sleep;
  /// Random draw in [0,1) for jitter; tests replace it.
  std::function<double()> random_unit;
  /// Receives one line per retry ("retrying GET …/blobs/sha256:… after 503 (attempt 2/5)").
  std::function<void(std::string_view)> log;
};

/// A manifest or index as the registry served it: exact bytes, the Content-Type, and the
/// digest (verified against the digest asked for, or computed and compared with the
/// Docker-Content-Digest header when asked by tag).
struct FetchedManifest {
  std::string bytes;
  std::string media_type;
  oci::Digest digest;
};

/// Called with the number of bytes of the current object transferred so far (monotonic;
/// after a resume it continues from the resume point).
using TransferProgress = std::function<void(std::uint64_t bytes_done)>;

/// Opens a fresh reader of an upload's content; called again for every upload attempt.
using SourceOpener = std::function<Result<std::unique_ptr<oci::ByteSource>>()>;

class RegistryClient {
public:
  /// `registry_domain` is the reference domain ("docker.io"), used for credentials; the host
  /// contacted is `host.host` ("registry-1.docker.io").
  RegistryClient(HttpTransport& transport, Authenticator& auth, HostSettings host,
                 std::string registry_domain, ClientOptions options = {});

  const std::string& host() const { return m_host.host; }
  const std::string& registry_domain() const { return m_domain; }

  /// GET /v2/ — checks that the registry answers and that the credentials are accepted
  /// (login). Fails with Code::auth when they are not.
  Result<void> ping();

  /// GET /v2/<repository>/manifests/<reference> (a tag or a digest) with an Accept header
  /// listing the OCI index and manifest and the Docker manifest list and schema 2 types. A
  /// Docker schema 1 answer is refused with Code::unsupported and a message saying so. At most
  /// 4 MiB.
  Result<FetchedManifest> get_manifest(std::string_view repository, std::string_view reference);

  /// HEAD of the same: the descriptor (media type, digest, size) of what the reference points
  /// at now, without the body; nullopt when the registry says it does not exist. A registry
  /// that sends no Docker-Content-Digest makes this fall back to get_manifest.
  Result<std::optional<oci::Descriptor>> head_manifest(std::string_view repository,
                                                       std::string_view reference);

  /// GET /v2/<repository>/blobs/<digest>, streamed into `sink`, resuming as described above.
  /// The client does not check the digest (the sink does, e.g. a store BlobWriter); it checks
  /// that no more than `blob.size` bytes arrive.
  Result<void> fetch_blob(std::string_view repository, const oci::Descriptor& blob,
                          layer::ByteSink& sink, const TransferProgress& progress = {});

  /// HEAD /v2/<repository>/blobs/<digest>: the size when the registry has the blob, nullopt
  /// when not.
  Result<std::optional<std::uint64_t>> blob_size(std::string_view repository,
                                                 const oci::Digest& digest);

  /// POST /v2/<repository>/blobs/uploads/?mount=<digest>&from=<from_repository>: true when the
  /// registry mounted the blob (201), false when it answered by opening an upload instead
  /// (202; the upload is cancelled).
  Result<bool> mount_blob(std::string_view repository, const oci::Digest& digest,
                          std::string_view from_repository);

  /// Uploads a blob (monolithic or chunked, see ClientOptions), and checks the
  /// Docker-Content-Digest of the answer when present. Retries reopen the source.
  Result<void> upload_blob(std::string_view repository, const oci::Descriptor& blob,
                           const SourceOpener& open, const TransferProgress& progress = {});

  /// PUT /v2/<repository>/manifests/<reference> with the exact bytes and Content-Type.
  /// Returns the digest of `bytes`, after checking it against Docker-Content-Digest when the
  /// registry sends one.
  Result<oci::Digest> put_manifest(std::string_view repository, std::string_view reference,
                                   std::string_view bytes, std::string_view media_type);

private:
  struct Exchange;
  Result<HttpResponse> send(Exchange& exchange, BodySink* sink);
  Result<std::string> base_url();

  HttpTransport& m_transport;
  Authenticator& m_auth;
  HostSettings m_host;
  std::string m_domain;
  ClientOptions m_options;
  std::atomic<int> m_scheme{0}; // 0 unknown, 1 https, 2 http
};

/// A registry's error answer as text: "404 MANIFEST_UNKNOWN: manifest unknown" from the JSON
/// `errors` array, else the status and the first line of the body (at most 200 characters).
std::string describe_error_response(const HttpResponse& response);

} // namespace minibuild::registry
