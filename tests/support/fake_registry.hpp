// An in-memory registry speaking the OCI distribution spec (and Docker Registry HTTP API v2),
// behind the HttpTransport interface: the network stand-in for unit tests of pull and push.
// It keeps repositories of blobs and manifests (by digest, tags pointing at digests), takes
// uploads (POST, PATCH with Content-Range, PUT ?digest=, monolithic POST ?digest=, cross-repo
// mount), answers HEAD, GET and ranged GET (206), and checks what a real registry checks:
// uploaded digests, manifest digests, and that a manifest's blobs and an index's manifests
// are there before it is accepted. Every request is recorded; switches make it misbehave
// (corrupt blob bytes, a broken connection, no Range support). Thread-safe: parallel
// downloads and uploads share it. Integration tests use the real docker-registry instead.
#pragma once

#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/http.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::test {

class FakeRegistry : public registry::HttpTransport {
public:
  /// What a request asked for, as recorded.
  struct Request {
    std::string method;
    std::string path;  ///< "/v2/app/blobs/sha256:…", percent-decoded
    std::string query; ///< "digest=sha256:…", percent-decoded
    std::string range; ///< the Range header, if any
    std::uint64_t body_size = 0;
  };

  /// "Always" for corrupt_blob().
  static constexpr int k_always = -1;

  // ---- content -------------------------------------------------------------------------------

  /// Stores a blob in `repository` directly (no request recorded); returns its digest.
  oci::Digest put_blob(const std::string& repository, std::string bytes) {
    const oci::Digest digest = oci::sha256_of(bytes);
    std::lock_guard lock(m_mutex);
    m_repos[repository].blobs[digest] = std::move(bytes);
    return digest;
  }

  /// Stores a manifest or index directly, unchecked, under its digest and, when `tag` is not
  /// empty, under the tag.
  oci::Digest put_manifest(const std::string& repository, const std::string& tag, std::string bytes,
                           std::string media_type) {
    const oci::Digest digest = oci::sha256_of(bytes);
    std::lock_guard lock(m_mutex);
    Repo& repo = m_repos[repository];
    repo.manifests[digest] = {std::move(bytes), std::move(media_type)};
    if (!tag.empty()) {
      repo.tags[tag] = digest;
    }
    return digest;
  }

  bool has_blob(const std::string& repository, const oci::Digest& digest) const {
    std::lock_guard lock(m_mutex);
    const auto repo = m_repos.find(repository);
    return repo != m_repos.end() && repo->second.blobs.contains(digest);
  }

  void remove_blob(const std::string& repository, const oci::Digest& digest) {
    std::lock_guard lock(m_mutex);
    m_repos[repository].blobs.erase(digest);
  }

  /// A manifest by tag or digest: {bytes, media type}.
  std::optional<std::pair<std::string, std::string>> manifest(const std::string& repository,
                                                              const std::string& reference) const {
    std::lock_guard lock(m_mutex);
    const auto repo = m_repos.find(repository);
    if (repo == m_repos.end()) {
      return std::nullopt;
    }
    const Stored* stored = find_manifest(repo->second, reference);
    if (stored == nullptr) {
      return std::nullopt;
    }
    return std::make_pair(stored->bytes, stored->media_type);
  }

  /// The digest a tag points at.
  std::optional<oci::Digest> tag(const std::string& repository, const std::string& tag) const {
    std::lock_guard lock(m_mutex);
    const auto repo = m_repos.find(repository);
    if (repo == m_repos.end()) {
      return std::nullopt;
    }
    const auto found = repo->second.tags.find(tag);
    if (found == repo->second.tags.end()) {
      return std::nullopt;
    }
    return found->second;
  }

  // ---- switches ------------------------------------------------------------------------------

  /// The next `times` GETs of blob `digest` (k_always: every one) serve the blob with its last
  /// byte flipped.
  void corrupt_blob(const oci::Digest& digest, int times) {
    std::lock_guard lock(m_mutex);
    m_corrupt_digest[digest] = times;
  }

  /// The `n`th blob GET from now on (1: the next one) serves corrupt bytes.
  void corrupt_nth_blob_get(int n) {
    std::lock_guard lock(m_mutex);
    m_corrupt_ordinals.insert(m_blob_gets + static_cast<std::uint64_t>(n));
  }

  /// The next GET of blob `digest` breaks (a transport error) after `bytes` body bytes.
  void break_blob_get(const oci::Digest& digest, std::uint64_t bytes) {
    std::lock_guard lock(m_mutex);
    m_break_after[digest] = bytes;
  }

  /// Whether blob GETs honour Range (206); without, a ranged GET gets the whole blob (200).
  void set_range_support(bool supported) {
    std::lock_guard lock(m_mutex);
    m_range_support = supported;
  }

  // ---- records -------------------------------------------------------------------------------

  std::vector<Request> requests() const {
    std::lock_guard lock(m_mutex);
    return m_requests;
  }

  void clear_requests() {
    std::lock_guard lock(m_mutex);
    m_requests.clear();
  }

  /// Requests with this method whose path contains `path_part` ("" counts every path).
  std::size_t count(std::string_view method, std::string_view path_part = {}) const {
    std::lock_guard lock(m_mutex);
    return static_cast<std::size_t>(
        std::count_if(m_requests.begin(), m_requests.end(), [&](const Request& request) {
          return request.method == method && request.path.find(path_part) != std::string::npos;
        }));
  }

  /// GETs of blobs (downloads), any repository.
  std::size_t blob_downloads() const {
    std::lock_guard lock(m_mutex);
    return static_cast<std::size_t>(
        std::count_if(m_requests.begin(), m_requests.end(), [](const Request& request) {
          return request.method == "GET" && is_blob_path(request.path);
        }));
  }

  /// Requests that send blob content: POST, PATCH and PUT on blobs/uploads/.
  std::size_t upload_requests() const {
    std::lock_guard lock(m_mutex);
    return static_cast<std::size_t>(
        std::count_if(m_requests.begin(), m_requests.end(), [](const Request& request) {
          return request.path.find("/blobs/uploads/") != std::string::npos &&
                 request.query.find("mount=") == std::string::npos && request.method != "DELETE";
        }));
  }

  // ---- HttpTransport -------------------------------------------------------------------------

  Result<registry::HttpResponse> send(const registry::HttpRequest& request,
                                      registry::BodySink* sink) override {
    std::string body = request.body;
    if (request.streamed_body) {
      body.clear();
      std::vector<char> buffer(64 * 1024);
      for (;;) {
        MB_TRY_ASSIGN(std::size_t n, request.streamed_body->source->read(buffer));
        if (n == 0) {
          break;
        }
        body.append(buffer.data(), n);
      }
      if (body.size() != request.streamed_body->size) {
        return fail(Code::network, "fake registry: streamed body of " +
                                       std::to_string(body.size()) + " bytes, announced " +
                                       std::to_string(request.streamed_body->size));
      }
    }

    Answer answer;
    {
      std::lock_guard lock(m_mutex);
      answer = handle_locked(request, body);
    }
    registry::HttpResponse& response = answer.response;
    if (request.method == "HEAD") {
      response.body.clear();
    }
    if (sink == nullptr || response.status < 200 || response.status >= 300) {
      if (answer.break_after) {
        return fail(Code::network, "fake registry: connection reset");
      }
      return response;
    }
    std::string content = std::move(response.body);
    response.body.clear();
    MB_TRY(sink->begin(response));
    // Deliver in network-sized pieces, so streaming consumers see many writes.
    constexpr std::size_t k_piece = 16 * 1024;
    const std::uint64_t limit = answer.break_after.value_or(content.size());
    for (std::size_t offset = 0; offset < content.size() && offset < limit;) {
      const std::size_t count =
          std::min({k_piece, content.size() - offset, static_cast<std::size_t>(limit - offset)});
      MB_TRY(sink->write(std::span<const char>(content.data() + offset, count)));
      offset += count;
    }
    if (answer.break_after) {
      return fail(Code::network, "fake registry: connection reset");
    }
    return response;
  }

private:
  struct Stored {
    std::string bytes;
    std::string media_type;
  };
  struct Repo {
    std::map<oci::Digest, std::string> blobs;
    std::map<oci::Digest, Stored> manifests;
    std::map<std::string, oci::Digest> tags;
  };
  struct Answer {
    registry::HttpResponse response;
    std::optional<std::uint64_t> break_after;
  };

  static bool is_blob_path(const std::string& path) {
    return path.find("/blobs/") != std::string::npos &&
           path.find("/blobs/uploads/") == std::string::npos;
  }

  static std::string percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  static std::map<std::string, std::string> parse_query(std::string_view query) {
    std::map<std::string, std::string> params;
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      const std::size_t eq = pair.find('=');
      params[percent_decode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
    return params;
  }

  static registry::HttpResponse response(int status, std::string body = {}) {
    registry::HttpResponse r;
    r.status = status;
    r.headers.add("Content-Length", std::to_string(body.size()));
    r.body = std::move(body);
    return r;
  }

  static registry::HttpResponse error(int status, std::string_view code, std::string_view text) {
    nlohmann::json json = {{"errors", {{{"code", code}, {"message", text}}}}};
    auto r = response(status, json.dump());
    r.headers.add("Content-Type", "application/json");
    return r;
  }

  static const Stored* find_manifest(const Repo& repo, const std::string& reference) {
    auto digest = oci::Digest::parse(reference);
    if (!digest) {
      const auto tagged = repo.tags.find(reference);
      if (tagged == repo.tags.end()) {
        return nullptr;
      }
      digest = tagged->second;
    }
    const auto found = repo.manifests.find(*digest);
    return found == repo.manifests.end() ? nullptr : &found->second;
  }

  // What a PUT manifest must find first, as distribution checks: a manifest's config and
  // layers (foreign layers excepted), an index's manifests. Empty when all are there.
  static std::string missing_reference(const Repo& repo, const std::string& bytes,
                                       const std::string& media_type) {
    if (oci::is_index(media_type)) {
      auto index = oci::parse<oci::ImageIndex>(bytes);
      if (!index) {
        return "unreadable index";
      }
      for (const auto& child : index->manifests) {
        if (!repo.manifests.contains(child.digest)) {
          return child.digest.to_string();
        }
      }
      return {};
    }
    auto manifest = oci::parse<oci::ImageManifest>(bytes);
    if (!manifest) {
      return "unreadable manifest";
    }
    if (!repo.blobs.contains(manifest->config.digest)) {
      return manifest->config.digest.to_string();
    }
    for (const auto& layer : manifest->layers) {
      if (layer.urls.empty() && !repo.blobs.contains(layer.digest)) {
        return layer.digest.to_string();
      }
    }
    return {};
  }

  Answer handle_locked(const registry::HttpRequest& request, const std::string& body) {
    std::string_view url = request.url;
    const std::size_t scheme_end = url.find("://");
    const std::size_t path_start =
        url.find('/', scheme_end == std::string_view::npos ? 0 : scheme_end + 3);
    const std::string base(url.substr(0, path_start));
    std::string_view target = path_start == std::string_view::npos ? "/" : url.substr(path_start);
    const std::size_t question = target.find('?');
    Request record;
    record.method = request.method;
    record.path = percent_decode(target.substr(0, question));
    record.query = question == std::string_view::npos ? std::string()
                                                      : percent_decode(target.substr(question + 1));
    record.range = request.headers.get("Range").value_or("");
    record.body_size = body.size();
    m_requests.push_back(record);
    const auto query = parse_query(
        question == std::string_view::npos ? std::string_view() : target.substr(question + 1));

    Answer answer;
    const std::string& path = record.path;
    if (path == "/v2/" || path == "/v2") {
      answer.response = response(200, "{}");
      return answer;
    }
    if (path.rfind("/v2/", 0) != 0) {
      answer.response = error(404, "NOT_FOUND", "not a registry path");
      return answer;
    }
    const std::string rest = path.substr(4);
    const std::size_t uploads = rest.find("/blobs/uploads/");
    const std::size_t manifests = rest.rfind("/manifests/");
    const std::size_t blobs = rest.rfind("/blobs/");
    if (uploads != std::string::npos) {
      answer.response =
          upload(rest.substr(0, uploads), rest.substr(uploads + 15), request, query, body, base);
    } else if (manifests != std::string::npos) {
      answer.response = manifest_request(rest.substr(0, manifests), rest.substr(manifests + 11),
                                         request, body, base);
    } else if (blobs != std::string::npos) {
      answer = blob_request(rest.substr(0, blobs), rest.substr(blobs + 7), request);
    } else {
      answer.response = error(404, "NOT_FOUND", "unknown endpoint");
    }
    return answer;
  }

  registry::HttpResponse manifest_request(const std::string& name, const std::string& reference,
                                          const registry::HttpRequest& request,
                                          const std::string& body, const std::string& base) {
    Repo& repo = m_repos[name];
    if (request.method == "GET" || request.method == "HEAD") {
      const Stored* stored = find_manifest(repo, reference);
      if (stored == nullptr) {
        return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
      }
      auto r = response(200, stored->bytes);
      r.headers.add("Content-Type", stored->media_type);
      r.headers.add("Docker-Content-Digest", oci::sha256_of(stored->bytes).to_string());
      return r;
    }
    if (request.method == "PUT") {
      const oci::Digest digest = oci::sha256_of(body);
      auto named = oci::Digest::parse(reference);
      if (named && *named != digest) {
        return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
      }
      const std::string media_type = request.headers.get("Content-Type").value_or("");
      if (!oci::is_manifest(media_type) && !oci::is_index(media_type)) {
        return error(400, "MANIFEST_INVALID", "unsupported media type " + media_type);
      }
      if (const std::string missing = missing_reference(repo, body, media_type); !missing.empty()) {
        return error(400, oci::is_index(media_type) ? "MANIFEST_UNKNOWN" : "MANIFEST_BLOB_UNKNOWN",
                     "reference unknown: " + missing);
      }
      repo.manifests[digest] = {body, media_type};
      if (!named) {
        repo.tags[reference] = digest;
      }
      auto r = response(201);
      r.headers.add("Location", base + "/v2/" + name + "/manifests/" + digest.to_string());
      r.headers.add("Docker-Content-Digest", digest.to_string());
      return r;
    }
    return error(405, "UNSUPPORTED", "method not allowed");
  }

  Answer blob_request(const std::string& name, const std::string& digest_text,
                      const registry::HttpRequest& request) {
    Answer answer;
    Repo& repo = m_repos[name];
    auto digest = oci::Digest::parse(digest_text);
    if (!digest) {
      answer.response = error(400, "DIGEST_INVALID", "invalid digest");
      return answer;
    }
    const auto found = repo.blobs.find(*digest);
    if (request.method != "GET" && request.method != "HEAD") {
      answer.response = error(405, "UNSUPPORTED", "method not allowed");
      return answer;
    }
    if (found == repo.blobs.end()) {
      answer.response = error(404, "BLOB_UNKNOWN", "blob unknown to registry");
      return answer;
    }
    std::string content = found->second;
    if (request.method == "GET") {
      ++m_blob_gets;
      bool corrupt = m_corrupt_ordinals.erase(m_blob_gets) > 0;
      if (auto times = m_corrupt_digest.find(*digest); times != m_corrupt_digest.end()) {
        if (times->second == k_always) {
          corrupt = true;
        } else if (times->second > 0) {
          corrupt = true;
          --times->second;
        }
      }
      if (corrupt && !content.empty()) {
        content.back() = static_cast<char>(content.back() ^ 0x01);
      }
      if (auto cut = m_break_after.find(*digest); cut != m_break_after.end()) {
        answer.break_after = cut->second;
        m_break_after.erase(cut);
      }
    }
    const std::uint64_t total = content.size();
    const auto range = request.headers.get("Range");
    std::uint64_t start = 0;
    if (range && m_range_support && range->rfind("bytes=", 0) == 0) {
      start = std::stoull(range->substr(6));
      if (start >= total) {
        answer.response = error(416, "RANGE_INVALID", "range not satisfiable");
        return answer;
      }
    }
    answer.response = response(start > 0 ? 206 : 200, content.substr(start));
    if (start > 0) {
      answer.response.headers.add("Content-Range", "bytes " + std::to_string(start) + "-" +
                                                       std::to_string(total - 1) + "/" +
                                                       std::to_string(total));
    }
    answer.response.headers.add("Content-Type", "application/octet-stream");
    answer.response.headers.add("Docker-Content-Digest", digest->to_string());
    if (m_range_support) {
      answer.response.headers.add("Accept-Ranges", "bytes");
    }
    if (answer.break_after && *answer.break_after >= total - start) {
      answer.break_after.reset(); // nothing left to cut
    }
    return answer;
  }

  registry::HttpResponse finish_blob(Repo& repo, const std::string& name,
                                     const std::string& content, const std::string& digest_text,
                                     const std::string& base) {
    auto digest = oci::Digest::parse(digest_text);
    if (!digest || oci::digest_of(digest->algorithm(), content) != *digest) {
      return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
    }
    repo.blobs[*digest] = content;
    auto r = response(201);
    r.headers.add("Location", base + "/v2/" + name + "/blobs/" + digest->to_string());
    r.headers.add("Docker-Content-Digest", digest->to_string());
    return r;
  }

  registry::HttpResponse upload(const std::string& name, const std::string& id,
                                const registry::HttpRequest& request,
                                const std::map<std::string, std::string>& query,
                                const std::string& body, const std::string& base) {
    Repo& repo = m_repos[name];
    const auto session_location = [&](const std::string& uuid) {
      return base + "/v2/" + name + "/blobs/uploads/" + uuid;
    };
    if (request.method == "POST" && id.empty()) {
      if (const auto mount = query.find("mount"); mount != query.end()) {
        const auto from = query.find("from");
        auto digest = oci::Digest::parse(mount->second);
        if (digest && from != query.end()) {
          const auto source = m_repos.find(from->second);
          if (source != m_repos.end()) {
            const auto blob = source->second.blobs.find(*digest);
            if (blob != source->second.blobs.end()) {
              const std::string content = blob->second;
              return finish_blob(repo, name, content, digest->to_string(), base);
            }
          }
        }
      }
      if (const auto digest = query.find("digest"); digest != query.end()) {
        return finish_blob(repo, name, body, digest->second, base);
      }
      const std::string uuid = "upload-" + std::to_string(++m_next_upload);
      m_uploads[uuid] = {name, body};
      auto r = response(202);
      r.headers.add("Location", session_location(uuid));
      r.headers.add("Docker-Upload-UUID", uuid);
      r.headers.add("Range", "0-0");
      return r;
    }
    const auto session = m_uploads.find(id);
    if (session == m_uploads.end() || session->second.first != name) {
      return error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
    }
    std::string& content = session->second.second;
    if (request.method == "DELETE") {
      m_uploads.erase(session);
      return response(204);
    }
    if (request.method == "PATCH") {
      if (const auto range = request.headers.get("Content-Range")) {
        const std::uint64_t start = std::stoull(*range);
        if (start != content.size()) {
          return error(416, "BLOB_UPLOAD_INVALID", "content range does not follow the upload");
        }
      }
      content += body;
      auto r = response(202);
      r.headers.add("Location", session_location(id));
      r.headers.add("Docker-Upload-UUID", id);
      r.headers.add("Range", "0-" + std::to_string(content.empty() ? 0 : content.size() - 1));
      return r;
    }
    if (request.method == "PUT") {
      const auto digest = query.find("digest");
      if (digest == query.end()) {
        return error(400, "DIGEST_INVALID", "digest missing");
      }
      const std::string whole = content + body;
      m_uploads.erase(session);
      return finish_blob(repo, name, whole, digest->second, base);
    }
    return error(405, "UNSUPPORTED", "method not allowed");
  }

  mutable std::mutex m_mutex;
  std::map<std::string, Repo> m_repos;
  std::map<std::string, std::pair<std::string, std::string>> m_uploads; // uuid → {repo, bytes}
  std::uint64_t m_next_upload = 0;
  std::vector<Request> m_requests;
  std::uint64_t m_blob_gets = 0;
  std::set<std::uint64_t> m_corrupt_ordinals;
  std::map<oci::Digest, int> m_corrupt_digest;
  std::map<oci::Digest, std::uint64_t> m_break_after;
  bool m_range_support = true;
};

} // namespace minibuild::test
