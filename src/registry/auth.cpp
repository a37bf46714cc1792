// WWW-Authenticate parsing (RFC 9110 §11) and the Authenticator: Basic (RFC 7617) and the
// distribution token flow (distribution docs/spec/auth/token.md; OAuth2 refresh tokens per
// docs/spec/auth/oauth.md).
#include "text.hpp"

#include <minibuild/oci/descriptor.hpp>
#include <minibuild/registry/auth.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

namespace minibuild::registry {
namespace {

using text::iequals;
using text::lower;

// The client_id of OAuth2 token requests (oauth.md: "a string identifying the client").
constexpr std::string_view k_client_id = "minibuild";
// The Basic header lives in HostState::tokens under this prefix plus the registry domain: it
// cannot collide with a scope key, which never holds a control character.
constexpr std::string_view k_basic_key = "\x01"
                                         "basic ";
// token.md: "When omitted, this defaults to 60 seconds."
constexpr std::chrono::seconds k_default_lifetime{60};
constexpr std::chrono::seconds k_min_margin{5};
constexpr std::size_t k_max_quoted_header = 200;

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9110 §11.2 token68 characters (without the trailing '=' padding).
bool is_token68_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("-._~+/").find(c) != std::string_view::npos;
}

class ChallengeParser {
public:
  explicit ChallengeParser(std::string_view text) : m_text(text) {}

  Result<std::vector<Challenge>> parse() {
    std::vector<Challenge> challenges;
    skip_separators();
    while (!at_end()) {
      Challenge challenge;
      challenge.scheme = std::string(token());
      if (challenge.scheme.empty()) {
        return error("expected an authentication scheme");
      }
      std::size_t after_scheme = m_pos;
      skip_spaces();
      if (!at_end() && peek() != ',') {
        if (m_pos == after_scheme) {
          return error("expected a space after the scheme");
        }
        if (looks_like_param()) {
          MB_TRY(parse_params(challenge));
        } else {
          MB_TRY(skip_token68());
        }
      }
      challenges.push_back(std::move(challenge));
      skip_separators();
    }
    if (challenges.empty()) {
      return error("no challenge");
    }
    return challenges;
  }

private:
  bool at_end() const { return m_pos >= m_text.size(); }
  char peek() const { return m_text[m_pos]; }

  void skip_spaces() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) {
      ++m_pos;
    }
  }
  // The list rule (RFC 9110 §5.6.1) allows empty elements: ", ,".
  void skip_separators() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == ',')) {
      ++m_pos;
    }
  }

  std::string_view token() {
    std::size_t start = m_pos;
    while (!at_end() && is_tchar(peek())) {
      ++m_pos;
    }
    return m_text.substr(start, m_pos - start);
  }

  // An auth-param starts here: token BWS "=" BWS (token / quoted-string). Anything else after
  // a scheme is a token68 ("abc==" also starts with a token and '=', but no value follows).
  bool looks_like_param() const {
    std::size_t pos = m_pos;
    auto skip = [&] {
      while (pos < m_text.size() && (m_text[pos] == ' ' || m_text[pos] == '\t')) {
        ++pos;
      }
    };
    std::size_t start = pos;
    while (pos < m_text.size() && is_tchar(m_text[pos])) {
      ++pos;
    }
    if (pos == start) {
      return false;
    }
    skip();
    if (pos >= m_text.size() || m_text[pos] != '=') {
      return false;
    }
    ++pos;
    skip();
    return pos < m_text.size() && (m_text[pos] == '"' || is_tchar(m_text[pos]));
  }

  // Parses #auth-param up to the next challenge or the end.
  Result<void> parse_params(Challenge& challenge) {
    for (;;) {
      std::string name = lower(token());
      skip_spaces();
      if (at_end() || peek() != '=') {
        return error("expected '=' after parameter \"" + name + "\"");
      }
      ++m_pos;
      skip_spaces();
      std::string value;
      if (!at_end() && peek() == '"') {
        MB_TRY_ASSIGN(value, quoted_string());
      } else {
        value = std::string(token());
        if (value.empty()) {
          return error("expected a value for parameter \"" + name + "\"");
        }
      }
      // RFC 9110: each parameter name occurs once; keep the first if a server repeats one.
      challenge.params.emplace(std::move(name), std::move(value));
      skip_spaces();
      if (at_end()) {
        return {};
      }
      if (peek() != ',') {
        return error("expected ',' between parameters");
      }
      skip_separators();
      if (at_end() || !looks_like_param()) {
        return {}; // the next challenge starts here
      }
    }
  }

  Result<std::string> quoted_string() {
    ++m_pos; // the opening quote
    std::string value;
    while (!at_end()) {
      char c = m_text[m_pos++];
      if (c == '"') {
        return value;
      }
      if (c == '\\') {
        if (at_end()) {
          break;
        }
        c = m_text[m_pos++];
      }
      auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
        return error("control character in a quoted string");
      }
      value += c;
    }
    return error("unterminated quoted string");
  }

  // Basic may carry a token68 in the wild (old servers echo credentials); minibuild uses no
  // scheme that needs it, so it is checked and dropped.
  Result<void> skip_token68() {
    std::size_t start = m_pos;
    while (!at_end() && is_token68_char(peek())) {
      ++m_pos;
    }
    if (m_pos == start) {
      return error("unexpected character");
    }
    while (!at_end() && peek() == '=') {
      ++m_pos;
    }
    skip_spaces();
    if (!at_end() && peek() != ',') {
      return error("unexpected character after token68");
    }
    return {};
  }

  tl::unexpected<Error> error(std::string_view what) const {
    std::string shown(m_text.substr(0, k_max_quoted_header));
    if (m_text.size() > k_max_quoted_header) {
      shown += "...";
    }
    return fail(Code::network, "malformed WWW-Authenticate header \"" + shown + "\": " +
                                   std::string(what) + " at offset " + std::to_string(m_pos));
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
};

// Scopes as a set: the cache key and the order in token requests do not depend on the order a
// caller listed them.
std::set<std::string> scope_set(const std::vector<std::string>& scopes) {
  std::set<std::string> set;
  for (const std::string& scope : scopes) {
    if (!scope.empty()) {
      set.insert(scope);
    }
  }
  return set;
}

std::string scope_key(const std::vector<std::string>& scopes) {
  std::string key;
  for (const std::string& scope : scope_set(scopes)) {
    if (!key.empty()) {
      key += ' ';
    }
    key += scope;
  }
  return key;
}

std::string basic_key(std::string_view registry_domain) {
  return std::string(k_basic_key) + std::string(registry_domain);
}

// RFC 3986 §2.3: everything but the unreserved characters is percent-encoded, which is right
// both in a query and in an application/x-www-form-urlencoded body.
std::string percent_encode(std::string_view text) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0xf];
    }
  }
  return out;
}

// The host of "HOST[:PORT]" or "[V6]:PORT", lower-cased.
std::string host_without_port(std::string_view authority) {
  if (authority.starts_with('[')) {
    return lower(authority.substr(0, authority.find(']') + 1));
  }
  return lower(authority.substr(0, authority.rfind(':')));
}

struct RealmUrl {
  bool plain_http = false;
  std::string authority; ///< HOST[:PORT], without any user info
};

Result<RealmUrl> parse_realm(std::string_view realm, std::string_view host) {
  RealmUrl url;
  std::string_view rest;
  if (iequals(realm.substr(0, 8), "https://")) {
    rest = realm.substr(8);
  } else if (iequals(realm.substr(0, 7), "http://")) {
    rest = realm.substr(7);
    url.plain_http = true;
  } else {
    return fail(Code::network, std::string(host) +
                                   " names a token realm that is not an http(s) URL: \"" +
                                   std::string(realm) + "\"");
  }
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    rest = rest.substr(at + 1);
  }
  if (rest.empty()) {
    return fail(Code::network, std::string(host) + " names a token realm without a host: \"" +
                                   std::string(realm) + "\"");
  }
  url.authority = std::string(rest);
  return url;
}

// What a token server says about a refusal, from the JSON shapes in use (Docker Hub's
// `details`, OAuth2's `error_description`/`error`, distribution's `errors`), dropped if it
// would echo a secret.
std::string server_detail(const HttpResponse& response,
                          const std::optional<Credentials>& credentials) {
  const auto json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string detail;
  if (json.is_object()) {
    for (const char* field : {"details", "error_description", "error"}) {
      if (auto it = json.find(field); it != json.end() && it->is_string()) {
        detail = it->get<std::string>();
        break;
      }
    }
    if (auto errors = json.find("errors"); detail.empty() && errors != json.end() &&
                                           errors->is_array() && !errors->empty() &&
                                           (*errors)[0].is_object()) {
      if (auto message = (*errors)[0].find("message");
          message != (*errors)[0].end() && message->is_string()) {
        detail = message->get<std::string>();
      }
    }
  }
  detail = detail.substr(0, 200);
  if (credentials) {
    for (const std::string* secret : {&credentials->password, &credentials->identity_token}) {
      if (!secret->empty() && detail.find(*secret) != std::string::npos) {
        return {};
      }
    }
  }
  if (std::ranges::any_of(detail, [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    return {};
  }
  return detail;
}

std::string login_hint(std::string_view registry_domain) {
  return "(run `minibuild login " + std::string(registry_domain) + "`)";
}

} // namespace

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header) {
  return ChallengeParser(header).parse();
}

std::string repository_scope(std::string_view repository_path, bool push) {
  return "repository:" + std::string(repository_path) + (push ? ":pull,push" : ":pull");
}

Authenticator::Authenticator(HttpTransport& transport, CredentialLookup lookup)
    : m_transport(transport), m_lookup(std::move(lookup)), m_now([] { return Clock::now(); }) {}

Result<std::optional<std::string>>
Authenticator::authorization(std::string_view host, std::string_view registry_domain,
                             const std::vector<std::string>& scopes) {
  std::unique_lock lock(m_mutex);
  auto state = m_hosts.find(host);
  if (state == m_hosts.end() || !state->second.challenge) {
    return std::nullopt;
  }
  if (iequals(state->second.challenge->scheme, "basic")) {
    const std::string key = basic_key(registry_domain);
    if (auto found = state->second.tokens.find(key); found != state->second.tokens.end()) {
      if (found->second.value.empty()) {
        return std::nullopt;
      }
      return found->second.value;
    }
    // Basic is known for this host but not yet for this domain (a mirror serving several):
    // look the credentials up without holding the lock (a helper may run).
    lock.unlock();
    MB_TRY_ASSIGN(std::optional<Credentials> credentials, m_lookup(registry_domain));
    std::string value;
    if (credentials && !credentials->password.empty()) {
      value = "Basic " + oci::base64_encode(credentials->username + ":" + credentials->password);
    }
    lock.lock();
    m_hosts[std::string(host)].tokens[key] = Token{value, Clock::time_point::max()};
    if (value.empty()) {
      return std::nullopt;
    }
    return value;
  }
  auto token = state->second.tokens.find(scope_key(scopes));
  if (token == state->second.tokens.end()) {
    return std::nullopt;
  }
  if (m_now() >= token->second.expires) {
    state->second.tokens.erase(token);
    return std::nullopt;
  }
  return "Bearer " + token->second.value;
}

Result<void> Authenticator::handle_unauthorized(
    std::string_view host, std::string_view registry_domain, const std::vector<std::string>& scopes,
    const HttpResponse& response, const TlsSettings& tls, ChallengeOrigin origin,
    const std::optional<std::string>& sent_authorization) {
  const std::string host_text(host);
  std::vector<Challenge> challenges;
  for (const std::string& value : response.headers.get_all("WWW-Authenticate")) {
    auto parsed = parse_www_authenticate(value);
    if (!parsed) {
      return fail(std::move(parsed).error().wrap(host_text));
    }
    std::ranges::move(*parsed, std::back_inserter(challenges));
  }
  if (challenges.empty()) {
    return fail(Code::auth, host_text + " answered " + std::to_string(response.status) +
                                " without a WWW-Authenticate challenge");
  }
  // Bearer first: a registry offering both prefers tokens (and Docker picks Bearer too).
  auto chosen = std::ranges::find_if(
      challenges, [](const Challenge& c) { return iequals(c.scheme, "bearer"); });
  if (chosen == challenges.end()) {
    chosen = std::ranges::find_if(challenges,
                                  [](const Challenge& c) { return iequals(c.scheme, "basic"); });
  }
  if (chosen == challenges.end()) {
    return fail(Code::unsupported, host_text + " asks for authentication scheme \"" +
                                       challenges.front().scheme +
                                       "\", which minibuild does not support (Basic, Bearer)");
  }
  const Challenge challenge = *chosen;
  const bool basic = iequals(challenge.scheme, "basic");

  std::unique_lock lock(m_mutex);
  HostState& state = m_hosts[host_text];
  if (state.challenge && !iequals(state.challenge->scheme, challenge.scheme)) {
    state.tokens.clear();
  }
  if (basic) {
    const std::string key = basic_key(registry_domain);
    if (auto sent = state.tokens.find(key); state.challenge && sent != state.tokens.end() &&
                                            !sent->second.value.empty() &&
                                            sent_authorization == sent->second.value) {
      // The request carried our Basic header and still got a 401.
      std::string user;
      if (auto decoded = oci::base64_decode(sent->second.value.substr(6)); decoded) {
        user = decoded->substr(0, decoded->find(':'));
      }
      return fail(Code::auth, host_text + " refused the credentials for " + user);
    }
    state.challenge = challenge;
    lock.unlock();
    auto credentials = m_lookup(registry_domain);
    if (!credentials) {
      return fail(
          std::move(credentials).error().wrap("credentials for " + std::string(registry_domain)));
    }
    if (!*credentials) {
      return fail(Code::auth, host_text + " requires authentication: no credentials configured " +
                                  login_hint(registry_domain));
    }
    if ((*credentials)->password.empty()) {
      return fail(Code::auth, host_text +
                                  " requires a user name and password (Basic), but the "
                                  "credentials for " +
                                  std::string(registry_domain) + " hold only an identity token " +
                                  login_hint(registry_domain));
    }
    std::string value =
        "Basic " + oci::base64_encode((*credentials)->username + ":" + (*credentials)->password);
    lock.lock();
    m_hosts[host_text].tokens[key] = Token{std::move(value), Clock::time_point::max()};
    return {};
  }

  const std::string key = scope_key(scopes);
  state.challenge = challenge;
  state.tokens.erase(key);
  // The token request can take a while; other hosts and cached tokens stay available.
  lock.unlock();
  MB_TRY_ASSIGN(Token token, fetch_token(challenge, registry_domain, scopes, tls, host, origin));
  lock.lock();
  m_hosts[host_text].tokens[key] = std::move(token);
  return {};
}

Result<Authenticator::Token>
Authenticator::fetch_token(const Challenge& challenge, std::string_view registry_domain,
                           const std::vector<std::string>& scopes, const TlsSettings& tls,
                           std::string_view host, ChallengeOrigin origin) {
  const std::string host_text(host);
  auto param = [&](const char* name) -> std::string {
    auto it = challenge.params.find(name);
    return it == challenge.params.end() ? std::string() : it->second;
  };
  const std::string realm = param("realm");
  if (realm.empty()) {
    return fail(Code::network, host_text + " sent a Bearer challenge without a realm");
  }
  MB_TRY_ASSIGN(RealmUrl url, parse_realm(realm, host));
  if (url.plain_http && origin != ChallengeOrigin::plain_http) {
    return fail(Code::network, host_text +
                                   " answered over https but names a token realm over "
                                   "plain http (" +
                                   url.authority + "); minibuild does not send credentials there");
  }
  const std::string what = "get a token from " + url.authority + " for " + host_text;

  // distribution sends the scope the refused request needed; ask for it with ours. A scope
  // parameter may list several, separated by spaces (RFC 6749 §3.3).
  std::vector<std::string> wanted = scopes;
  const std::string challenge_scope = param("scope");
  for (std::string_view rest = challenge_scope; !rest.empty();) {
    std::size_t space = rest.find(' ');
    wanted.emplace_back(rest.substr(0, space));
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  const std::set<std::string> all_scopes = scope_set(wanted);
  const std::string service = param("service");

  auto credentials = m_lookup(registry_domain);
  if (!credentials) {
    return fail(
        std::move(credentials).error().wrap("credentials for " + std::string(registry_domain)));
  }

  HttpRequest request;
  // The registry's certificates (certs.d, --registry-ca) also cover a realm on its own host.
  if (host_without_port(url.authority) == host_without_port(host)) {
    request.tls = tls;
  }
  if (*credentials && !(*credentials)->identity_token.empty()) {
    // oauth.md: a refresh token is exchanged by POST; scopes are one space-separated value.
    std::string scope_text;
    for (const std::string& scope : all_scopes) {
      scope_text += (scope_text.empty() ? "" : " ") + scope;
    }
    request.method = "POST";
    request.url = realm;
    request.headers.add("Content-Type", "application/x-www-form-urlencoded");
    request.body =
        "grant_type=refresh_token&refresh_token=" + percent_encode((*credentials)->identity_token) +
        "&service=" + percent_encode(service);
    if (!scope_text.empty()) {
      request.body += "&scope=" + percent_encode(scope_text);
    }
    request.body += "&client_id=" + std::string(k_client_id);
  } else {
    // token.md: GET with service, one scope parameter per scope, Basic auth when we have
    // credentials (anonymous otherwise), and the account, as Docker sends it.
    std::string query;
    auto add = [&](std::string_view name, std::string_view value) {
      query += (query.empty() ? "" : "&") + std::string(name) + "=" + percent_encode(value);
    };
    if (!service.empty()) {
      add("service", service);
    }
    for (const std::string& scope : all_scopes) {
      add("scope", scope);
    }
    if (*credentials && !(*credentials)->username.empty()) {
      add("account", (*credentials)->username);
    }
    request.url = realm;
    if (!query.empty()) {
      request.url += (realm.find('?') == std::string::npos ? "?" : "&") + query;
    }
    if (*credentials && !(*credentials)->password.empty()) {
      request.headers.add(
          "Authorization",
          "Basic " + oci::base64_encode((*credentials)->username + ":" + (*credentials)->password));
    }
  }

  auto sent = m_transport.send(request, nullptr);
  if (!sent) {
    return fail(std::move(sent).error().wrap(what));
  }
  const HttpResponse& response = *sent;
  if (response.status == 401 || response.status == 403) {
    std::string detail = server_detail(response, *credentials);
    detail = detail.empty() ? "" : ": " + detail;
    if (*credentials && !(*credentials)->identity_token.empty()) {
      return fail(Code::auth, url.authority + " refused the identity token for " +
                                  std::string(registry_domain) + " (token for " + host_text + ", " +
                                  std::to_string(response.status) + detail + ") " +
                                  login_hint(registry_domain));
    }
    if (*credentials && !(*credentials)->password.empty()) {
      return fail(Code::auth, url.authority + " refused the credentials for " +
                                  (*credentials)->username + " (token for " + host_text + ", " +
                                  std::to_string(response.status) + detail + ")");
    }
    return fail(Code::auth, url.authority + " refused an anonymous token for " + host_text + " (" +
                                std::to_string(response.status) + detail +
                                "): no credentials configured " + login_hint(registry_domain));
  }
  if (response.status < 200 || response.status >= 300) {
    std::string detail = server_detail(response, *credentials);
    return fail(Code::network, what + ": status " + std::to_string(response.status) +
                                   (detail.empty() ? "" : ": " + detail));
  }

  const auto json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return fail(Code::network, what + ": the answer is not a JSON object");
  }
  std::string value;
  for (const char* field : {"token", "access_token"}) {
    if (auto it = json.find(field);
        it != json.end() && it->is_string() && !it->get<std::string>().empty()) {
      value = it->get<std::string>();
      break;
    }
  }
  if (value.empty()) {
    return fail(Code::network, what + ": the answer has no token");
  }
  std::chrono::seconds lifetime = k_default_lifetime;
  if (auto it = json.find("expires_in"); it != json.end() && it->is_number()) {
    if (double seconds = it->get<double>(); seconds >= 1 && seconds < 1e9) {
      lifetime = std::chrono::seconds(static_cast<long long>(seconds));
    }
  }
  // issued_at is not used: it is the server's wall clock, and a skewed local clock would make
  // every token look expired. Counting from the answer's arrival errs on the safe side.
  // The margin keeps a token from expiring between authorization() and the registry reading
  // it; for very short lifetimes it is capped so the token still serves the retry.
  auto margin = std::max<std::chrono::seconds>(lifetime / 10, k_min_margin);
  margin = std::min<std::chrono::seconds>(margin, lifetime / 2);
  return Token{std::move(value), m_now() + (lifetime - margin)};
}

} // namespace minibuild::registry
