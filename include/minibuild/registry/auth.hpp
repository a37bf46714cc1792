// Registry authentication: the challenge a registry answers with (WWW-Authenticate), and the
// Authenticator that turns credentials into Authorization headers — Basic, or the Bearer token
// flow of the distribution token spec (docs/spec/auth/token.md, oauth.md).
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/registry/credentials.hpp>
#include <minibuild/registry/http.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::registry {

/// One challenge of a WWW-Authenticate header: a scheme ("Bearer", "Basic"; compared
/// case-insensitively) and its auth-params (names lower-cased, values unquoted).
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params; ///< realm, service, scope, error, ...

  bool operator==(const Challenge&) const = default;
};

/// Parses a WWW-Authenticate value (RFC 9110 §11.6.1): one or more comma-separated challenges,
/// params as token=token or token=quoted-string (with \-escapes). Malformed input gives
/// Code::network quoting the header (it comes from the server).
Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header);

/// A repository scope for tokens: "repository:library/alpine:pull" or ":pull,push".
std::string repository_scope(std::string_view repository_path, bool push);

/// How the 401 that handle_unauthorized reads reached us. Only a challenge that came over plain
/// http may name an http:// token realm: one received over TLS must not send credentials in
/// clear text.
enum class ChallengeOrigin { https, plain_http };

/// Finds credentials for a registry domain; find_credentials in production, a lambda in tests.
using CredentialLookup =
    std::function<Result<std::optional<Credentials>>(std::string_view registry_domain)>;

/// Authorization state for the registries of one command. Thread-safe: downloads running in
/// parallel share it. Tokens are cached per (host, scope set) until they expire (expires_in,
/// default 60 s, minus a margin).
class Authenticator {
public:
  using Clock = std::chrono::steady_clock;

  Authenticator(HttpTransport& transport, CredentialLookup lookup);

  /// The Authorization header value to send to `host` for a request needing `scopes`, or
  /// nullopt when no challenge is known yet for that host (the first request goes out
  /// anonymous; Docker does the same) or the cached token expired and none is known.
  /// `registry_domain` is the reference's domain, the key for credentials ("docker.io").
  Result<std::optional<std::string>> authorization(std::string_view host,
                                                   std::string_view registry_domain,
                                                   const std::vector<std::string>& scopes);

  /// Handles a 401 from `host`: reads its WWW-Authenticate challenge, forgets any cached token
  /// for `scopes`, and fetches a new one (Bearer) or prepares Basic from the credentials.
  /// `tls` is used for a token realm on the same host. Fails with Code::auth when the
  /// registry wants credentials that are not configured (the message says to run
  /// `minibuild login HOST`) or refuses them; Code::network when the token server cannot
  /// be reached. Never puts a secret in a message. `origin` is how the 401 arrived (see
  /// ChallengeOrigin). `sent_authorization` is the Authorization header the refused request
  /// carried: Basic credentials count as refused only when that request carried them (a
  /// request that went out anonymous in parallel, before the first challenge was handled,
  /// just gets them now).
  Result<void> handle_unauthorized(std::string_view host, std::string_view registry_domain,
                                   const std::vector<std::string>& scopes,
                                   const HttpResponse& response, const TlsSettings& tls,
                                   ChallengeOrigin origin = ChallengeOrigin::https,
                                   const std::optional<std::string>& sent_authorization = {});

  /// Replaces the clock (tests).
  void set_clock(std::function<Clock::time_point()> now) { m_now = std::move(now); }

private:
  struct Token {
    std::string value;
    Clock::time_point expires;
  };
  struct HostState {
    std::optional<Challenge> challenge;
    std::map<std::string, Token> tokens; // key: scopes joined by ' '
  };

  Result<Token> fetch_token(const Challenge& challenge, std::string_view registry_domain,
                            const std::vector<std::string>& scopes, const TlsSettings& tls,
                            std::string_view host, ChallengeOrigin origin);

  HttpTransport& m_transport;
  CredentialLookup m_lookup;
  std::function<Clock::time_point()> m_now;
  std::mutex m_mutex;
  std::map<std::string, HostState, std::less<>> m_hosts;
};

} // namespace minibuild::registry
