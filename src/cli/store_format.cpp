#include "store_format.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace minibuild::cli {

namespace {

std::size_t code_points(std::string_view text) {
  std::size_t count = 0;
  for (char c : text) {
    // Count every byte that does not continue a UTF-8 sequence.
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) {
      ++count;
    }
  }
  return count;
}

bool read_digits(std::string_view text, std::size_t at, std::size_t count, int& value) {
  if (at + count > text.size()) {
    return false;
  }
  value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

} // namespace

std::string human_size(std::uint64_t bytes) {
  // go-units: divide by 1000 while >= 1000, then "%.*g" with precision 3.
  static constexpr std::array k_units = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  double size = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (size >= 1000.0 && unit + 1 < k_units.size()) {
    size /= 1000.0;
    ++unit;
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3g%s", size, k_units[unit]);
  return buffer;
}

std::string human_age(std::int64_t seconds) {
  auto plural = [](std::int64_t count, const char* unit) {
    return std::to_string(count) + " " + unit + " ago";
  };
  if (seconds < 1) {
    return "Less than a second ago";
  }
  if (seconds == 1) {
    return "1 second ago";
  }
  if (seconds < 60) {
    return plural(seconds, "seconds");
  }
  std::int64_t minutes = seconds / 60;
  if (minutes == 1) {
    return "About a minute ago";
  }
  if (minutes < 60) {
    return plural(minutes, "minutes");
  }
  std::int64_t hours = seconds / 3600;
  if (hours == 1) {
    return "About an hour ago";
  }
  if (hours < 48) {
    return plural(hours, "hours");
  }
  if (hours < 24 * 7 * 2) {
    return plural(hours / 24, "days");
  }
  if (hours < 24 * 30 * 2) {
    return plural(hours / 24 / 7, "weeks");
  }
  if (hours < 24 * 365 * 2) {
    return plural(hours / 24 / 30, "months");
  }
  return plural(hours / 24 / 365, "years");
}

std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(text, 0, 4, year) || text.size() < 20 || text[4] != '-' ||
      !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't') || !read_digits(text, 11, 2, hour) || text[13] != ':' ||
      !read_digits(text, 14, 2, minute) || text[16] != ':' || !read_digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    ++at;
    std::size_t digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      ++at;
      ++digits;
    }
    if (digits == 0) {
      return std::nullopt;
    }
  }
  std::int64_t offset = 0;
  if (at + 1 == text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    offset = 0;
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') && text[at + 3] == ':') {
    int offset_hours = 0, offset_minutes = 0;
    if (!read_digits(text, at + 1, 2, offset_hours) ||
        !read_digits(text, at + 4, 2, offset_minutes)) {
      return std::nullopt;
    }
    offset = (offset_hours * 60 + offset_minutes) * 60;
    if (text[at] == '-') {
      offset = -offset;
    }
  } else {
    return std::nullopt;
  }
  std::tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_sec = second;
  return static_cast<std::int64_t>(::timegm(&parts)) - offset;
}

std::string created_column(std::string_view created, std::int64_t now) {
  auto when = parse_rfc3339(created);
  if (!when) {
    return "N/A";
  }
  return human_age(now - *when);
}

std::string short_id(std::string_view digest) {
  auto colon = digest.find(':');
  std::string_view hex = colon == std::string_view::npos ? digest : digest.substr(colon + 1);
  return std::string(hex.substr(0, 12));
}

std::string ellipsis(std::string_view text, std::size_t max_width) {
  std::string clean(text);
  for (char& c : clean) {
    if (c == '\t' || c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  if (max_width == 0 || code_points(clean) <= max_width) {
    return clean;
  }
  // Keep max_width - 1 code points, then the ellipsis character.
  std::size_t kept = 0;
  std::size_t at = 0;
  while (at < clean.size()) {
    if ((static_cast<unsigned char>(clean[at]) & 0xC0U) != 0x80U) {
      if (kept == max_width - 1) {
        break;
      }
      ++kept;
    }
    ++at;
  }
  return clean.substr(0, at) + "…";
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) {
      widths.resize(row.size(), 0);
    }
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], code_points(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        std::size_t column = std::max<std::size_t>(widths[i] + 3, 10);
        line.append(column - code_points(row[i]), ' ');
      }
    }
    out += line + "\n";
  }
  return out;
}

} // namespace minibuild::cli
