// The retry policy of retry.hpp: pure functions, no clock and no random source of their own.
#include "text.hpp"

#include <minibuild/registry/retry.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <ctime>

namespace minibuild::registry {
namespace {

using text::trim;

constexpr std::array<std::string_view, 7> k_day_names = {"Mon", "Tue", "Wed", "Thu",
                                                         "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 12> k_month_names = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A Retry-After of more than this many seconds is nonsense; clamping keeps the arithmetic below
// far from overflow (retry_delay caps the wait to max_retry_after anyway).
constexpr std::uint64_t k_max_seconds = 10'000'000'000ULL;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Exactly `width` digits at `text[pos]`.
std::optional<int> fixed_number(std::string_view text, std::size_t pos, std::size_t width) {
  if (pos + width > text.size()) {
    return std::nullopt;
  }
  int value = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (!is_digit(text[i])) {
      return std::nullopt;
    }
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// IMF-fixdate (RFC 9110 section 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT", fixed width, parsed by
// hand because strptime's %a/%b follow the process locale. The obsolete RFC 850 and asctime
// forms are not accepted: the header promises IMF-fixdate only, and registries send that.
std::optional<std::time_t> parse_imf_fixdate(std::string_view text) {
  // 0    5  8   12   17 20 23 26
  // Sun, 06 Nov 1994 08:49:37 GMT
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  if (std::find(k_day_names.begin(), k_day_names.end(), text.substr(0, 3)) == k_day_names.end()) {
    return std::nullopt;
  }
  const auto month = std::find(k_month_names.begin(), k_month_names.end(), text.substr(8, 3));
  const auto day = fixed_number(text, 5, 2);
  const auto year = fixed_number(text, 12, 4);
  const auto hour = fixed_number(text, 17, 2);
  const auto minute = fixed_number(text, 20, 2);
  const auto second = fixed_number(text, 23, 2);
  if (month == k_month_names.end() || !day || !year || !hour || !minute || !second || *hour > 23 ||
      *minute > 59 || *second > 60 || *day < 1) {
    return std::nullopt;
  }
  std::tm fields{};
  fields.tm_year = *year - 1900;
  fields.tm_mon = static_cast<int>(month - k_month_names.begin());
  fields.tm_mday = *day;
  fields.tm_hour = *hour;
  fields.tm_min = *minute;
  fields.tm_sec = *second == 60 ? 59 : *second; // a leap second is close enough to :59
  const int wanted_month = fields.tm_mon;
  const std::time_t seconds = ::timegm(&fields);
  // timegm normalises "31 Feb" to March; such a date is not a date.
  if (seconds == static_cast<std::time_t>(-1) || fields.tm_mon != wanted_month) {
    return std::nullopt;
  }
  return seconds;
}

} // namespace

bool is_retryable_status(int status) {
  switch (status) {
  case 408:
  case 429:
  case 500:
  case 502:
  case 503:
  case 504:
    return true;
  default:
    return false;
  }
}

bool is_retryable_error(const Error& error) {
  if (error.code() != Code::network) {
    return false;
  }
  // The transport's errno says what kind of failure this was (curl_transport.cpp): these three
  // will fail the same way next time.
  const int sys_errno = error.sys_errno();
  return sys_errno != EBADMSG && sys_errno != EPROTO && sys_errno != EHOSTUNREACH;
}

std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
  using std::chrono::milliseconds;
  const std::string_view text = trim(value);
  if (text.empty()) {
    return std::nullopt;
  }
  if (std::all_of(text.begin(), text.end(), is_digit)) {
    std::uint64_t seconds = 0;
    for (char c : text) {
      seconds = std::min(seconds * 10 + static_cast<std::uint64_t>(c - '0'), k_max_seconds);
    }
    return milliseconds(static_cast<milliseconds::rep>(seconds) * 1000);
  }
  const std::optional<std::time_t> date = parse_imf_fixdate(text);
  if (!date) {
    return std::nullopt;
  }
  // In milliseconds since the epoch, not through system_clock::from_time_t: a date far in the
  // future (a server may send year 9999) overflows the clock's nanosecond representation.
  // IMF-fixdate years have four digits, so date * 1000 stays far inside 64 bits.
  const std::int64_t now_ms =
      std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  const std::int64_t until_ms = static_cast<std::int64_t>(*date) * 1000 - now_ms;
  if (until_ms <= 0) {
    return milliseconds(0);
  }
  return milliseconds(
      std::min<std::int64_t>(until_ms, static_cast<std::int64_t>(k_max_seconds) * 1000));
}

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int attempt,
                                      std::optional<std::chrono::milliseconds> retry_after,
                                      double random_unit) {
  using std::chrono::milliseconds;
  if (retry_after) {
    return std::clamp(*retry_after, milliseconds(0),
                      std::max(policy.max_retry_after, milliseconds(0)));
  }
  // base * 2^(attempt-1), doubled step by step so that a large attempt cannot overflow.
  const milliseconds max_delay = std::max(policy.max_delay, milliseconds(0));
  milliseconds cap = std::clamp(policy.base_delay, milliseconds(0), max_delay);
  for (int i = 1; i < attempt && cap < max_delay; ++i) {
    cap = std::min(cap * 2, max_delay);
  }
  const double unit = std::clamp(random_unit, 0.0, std::nextafter(1.0, 0.0));
  return milliseconds(static_cast<milliseconds::rep>(static_cast<double>(cap.count()) * unit));
}

} // namespace minibuild::registry
