// An in-memory HttpTransport for unit tests of the registry logic (auth, client): each send()
// is answered by a handler the test writes, and every request is recorded so the test can
// check what was sent (headers, order, bodies). Integration tests use the real transport
// against a real registry.
#pragma once

#include <minibuild/registry/http.hpp>

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace minibuild::test {

class ScriptedTransport : public registry::HttpTransport {
public:
  /// Answers one request. Return an HttpResponse (its body is streamed to the sink for 2xx
  /// when there is one) or an Error (a transport failure).
  using Handler = std::function<Result<registry::HttpResponse>(const registry::HttpRequest&)>;

  explicit ScriptedTransport(Handler handler) : m_handler(std::move(handler)) {}

  Result<registry::HttpResponse> send(const registry::HttpRequest& request,
                                      registry::BodySink* sink) override {
    registry::HttpRequest recorded = request;
    if (request.streamed_body) {
      // Drain the streamed body so the test can look at it.
      std::string body;
      std::vector<char> buffer(64 * 1024);
      for (;;) {
        MB_TRY_ASSIGN(std::size_t n, request.streamed_body->source->read(buffer));
        if (n == 0) {
          break;
        }
        body.append(buffer.data(), n);
      }
      recorded.body = std::move(body);
      recorded.streamed_body.reset();
    }
    {
      std::lock_guard lock(m_mutex);
      m_requests.push_back(recorded);
    }
    MB_TRY_ASSIGN(registry::HttpResponse response, m_handler(recorded));
    if (sink != nullptr && response.status >= 200 && response.status < 300) {
      MB_TRY(sink->begin(response));
      if (!response.body.empty()) {
        MB_TRY(sink->write(std::span<const char>(response.body.data(), response.body.size())));
      }
      response.body.clear();
    }
    return response;
  }

  std::vector<registry::HttpRequest> requests() const {
    std::lock_guard lock(m_mutex);
    return m_requests;
  }

private:
  Handler m_handler;
  mutable std::mutex m_mutex;
  std::vector<registry::HttpRequest> m_requests;
};

/// A response with a status, optional body and headers.
inline registry::HttpResponse
make_response(int status, std::string body = {},
              std::vector<std::pair<std::string, std::string>> headers = {}) {
  registry::HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  for (auto& [name, value] : headers) {
    response.headers.add(std::move(name), std::move(value));
  }
  return response;
}

} // namespace minibuild::test
