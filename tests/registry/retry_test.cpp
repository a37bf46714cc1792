#include <minibuild/registry/retry.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <ctime>

using namespace minibuild;
using namespace minibuild::registry;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// 1994-11-06 08:49:37 UTC, the example date of RFC 9110.
std::chrono::system_clock::time_point rfc_example_time() {
  return std::chrono::system_clock::from_time_t(784111777);
}

Error network_error(int sys_errno) {
  return Error::from_errno(sys_errno, "GET https://registry.example/v2/").with_code(Code::network);
}

} // namespace

TEST_CASE("retryable statuses are 408, 429 and the 5xx gateway family", "[retry]") {
  for (int status : {408, 429, 500, 502, 503, 504}) {
    CAPTURE(status);
    CHECK(is_retryable_status(status));
  }
  for (int status : {200, 201, 204, 301, 307, 400, 401, 403, 404, 405, 409, 416, 501, 505}) {
    CAPTURE(status);
    CHECK_FALSE(is_retryable_status(status));
  }
}

TEST_CASE("network errors are retried unless they will fail the same way", "[retry]") {
  CHECK(is_retryable_error(network_error(ECONNREFUSED)));
  CHECK(is_retryable_error(network_error(ECONNRESET)));
  CHECK(is_retryable_error(network_error(ETIMEDOUT)));
  CHECK(is_retryable_error(network_error(EIO)));
  CHECK_FALSE(is_retryable_error(network_error(EBADMSG)));      // TLS verification
  CHECK_FALSE(is_retryable_error(network_error(EPROTO)));       // not TLS
  CHECK_FALSE(is_retryable_error(network_error(EHOSTUNREACH))); // unknown host
  // Other codes are never retried, whatever their errno.
  CHECK_FALSE(is_retryable_error(Error(Code::corrupt, "blob digest mismatch")));
  CHECK_FALSE(is_retryable_error(Error::from_errno(ECONNRESET, "write")));
}

TEST_CASE("Retry-After as delay-seconds", "[retry]") {
  const auto now = rfc_example_time();
  CHECK(parse_retry_after("0", now) == milliseconds(0));
  CHECK(parse_retry_after("120", now) == milliseconds(120'000));
  CHECK(parse_retry_after("  7\t", now) == milliseconds(7'000));
  // Absurdly long values do not overflow; retry_delay caps them later.
  const auto huge = parse_retry_after("99999999999999999999999999", now);
  REQUIRE(huge);
  CHECK(*huge > milliseconds(0));
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after("  ", now));
  CHECK_FALSE(parse_retry_after("-5", now));
  CHECK_FALSE(parse_retry_after("1.5", now));
  CHECK_FALSE(parse_retry_after("10s", now));
}

TEST_CASE("Retry-After as an IMF-fixdate", "[retry]") {
  const auto now = rfc_example_time();
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == milliseconds(0));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now) == milliseconds(30'000));
  CHECK(parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", now) == milliseconds(86'400'000));
  // The day name is not cross-checked, as most HTTP stacks do not.
  CHECK(parse_retry_after("Fri, 06 Nov 1994 08:50:07 GMT", now) == milliseconds(30'000));
  // A date in the past waits not at all.
  CHECK(parse_retry_after("Sat, 01 Jan 1994 00:00:00 GMT", now) == milliseconds(0));
  // Sub-second "now" rounds the wait up, never down to an early retry.
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:38 GMT", now + milliseconds(250)) ==
        milliseconds(750));
  // Leap years and month ends.
  const auto leap_now = std::chrono::system_clock::from_time_t(951782400); // 2000-02-29 00:00
  CHECK(parse_retry_after("Tue, 29 Feb 2000 00:00:10 GMT", leap_now) == milliseconds(10'000));
  // A date far beyond what the clock can hold (found by fuzzing: it overflowed from_time_t).
  const auto far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", {});
  REQUIRE(far);
  CHECK(*far > milliseconds(0));
}

TEST_CASE("Retry-After values that are not IMF-fixdates are refused", "[retry]") {
  const auto now = rfc_example_time();
  for (const char* value : {
           "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850, obsolete
           "Sun Nov  6 08:49:37 1994",       // asctime, obsolete
           "Sun, 06 Nov 1994 08:49:37 UTC",  // only GMT is allowed
           "Sun, 6 Nov 1994 08:49:37 GMT",   // day needs two digits
           "Sun, 06 nov 1994 08:49:37 GMT",  // month names are case-sensitive
           "Xyz, 06 Nov 1994 08:49:37 GMT",  // not a day name
           "Sun, 06 Foo 1994 08:49:37 GMT",  // not a month name
           "Sun, 00 Nov 1994 08:49:37 GMT",  // day 0
           "Sun, 31 Nov 1994 08:49:37 GMT",  // 31 November
           "Tue, 29 Feb 2022 00:00:00 GMT",  // not a leap year
           "Sun, 06 Nov 1994 24:00:00 GMT",  // hour 24
           "Sun, 06 Nov 1994 08:60:00 GMT",  // minute 60
           "Sun, 06 Nov 1994 08:49:37 GMT x",
       }) {
    CAPTURE(value);
    CHECK_FALSE(parse_retry_after(value, now));
  }
}

TEST_CASE("retry delay: exponential backoff with full jitter", "[retry]") {
  const RetryPolicy policy{
      .max_attempts = 5, .base_delay = milliseconds(200), .max_delay = milliseconds(1'000)};
  // The upper bound doubles per attempt: 200, 400, 800, then the 1000 cap.
  CHECK(retry_delay(policy, 1, std::nullopt, 0.5) == milliseconds(100));
  CHECK(retry_delay(policy, 2, std::nullopt, 0.5) == milliseconds(200));
  CHECK(retry_delay(policy, 3, std::nullopt, 0.5) == milliseconds(400));
  CHECK(retry_delay(policy, 4, std::nullopt, 0.5) == milliseconds(500));
  CHECK(retry_delay(policy, 50, std::nullopt, 0.5) == milliseconds(500));
  CHECK(retry_delay(policy, 1'000'000, std::nullopt, 0.5) == milliseconds(500));
  // Full jitter: anywhere from zero up to (not including) the bound.
  CHECK(retry_delay(policy, 3, std::nullopt, 0.0) == milliseconds(0));
  CHECK(retry_delay(policy, 3, std::nullopt, 0.999) == milliseconds(799));
  // An out-of-range draw stays inside [0, bound).
  CHECK(retry_delay(policy, 3, std::nullopt, 1.0) < milliseconds(800));
  CHECK(retry_delay(policy, 3, std::nullopt, -3.0) == milliseconds(0));
}

TEST_CASE("retry delay: the server's Retry-After wins, capped", "[retry]") {
  const RetryPolicy policy{.max_retry_after = milliseconds(60'000)};
  CHECK(retry_delay(policy, 1, milliseconds(5'000), 0.0) == milliseconds(5'000));
  CHECK(retry_delay(policy, 4, milliseconds(0), 0.9) == milliseconds(0));
  CHECK(retry_delay(policy, 1, milliseconds(3'600'000), 0.5) == milliseconds(60'000));
  // End to end with a parsed header.
  const auto now = rfc_example_time();
  CHECK(retry_delay(policy, 2, parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), 0.5) ==
        milliseconds(30'000));
}
