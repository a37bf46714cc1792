// When to retry a registry request and how long to wait: exponential backoff with full jitter,
// honouring Retry-After. Pure functions, so the policy is unit tested without a network.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/registry/http.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace minibuild::registry {

struct RetryPolicy {
  int max_attempts = 5; ///< attempts in all, the first included; 1 = never retry
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{10'000};
  /// Upper bound for a server's Retry-After; a longer one is cut to this.
  std::chrono::milliseconds max_retry_after{60'000};
};

/// Whether an HTTP status is worth retrying: 408, 429, 500, 502, 503, 504.
bool is_retryable_status(int status);

/// Whether a transport error (HttpTransport::send) is worth retrying: Code::network errors
/// other than TLS verification failures (EBADMSG), not-TLS (EPROTO) and unknown hosts
/// (EHOSTUNREACH). Errors of other codes (a sink's corrupt data) are not.
bool is_retryable_error(const Error& error);

/// Parses a Retry-After value: delay-seconds or an HTTP-date (IMF-fixdate, RFC 9110), relative
/// to `now`. nullopt when it is neither; a date in the past gives zero.
std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now);

/// The wait before attempt `attempt` + 1 (attempt counts from 1): a Retry-After from the
/// server (capped by max_retry_after) when there is one, else a uniformly random delay in
/// [0, min(max_delay, base_delay * 2^(attempt-1))] ("full jitter"); `random_unit` in [0, 1)
/// is the random draw, passed in so that tests are deterministic.
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int attempt,
                                      std::optional<std::chrono::milliseconds> retry_after,
                                      double random_unit);

} // namespace minibuild::registry
