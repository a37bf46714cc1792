// Text formatting for the store commands (images, history, prune): sizes, ages and tables the
// way the docker CLI prints them, so that people and scripts used to docker read them alike.
// Pure functions of their inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::cli {

/// docker's size column (go-units HumanSizeWithPrecision(size, 3)): decimal units, three
/// significant digits: 0 → "0B", 1234 → "1.23kB", 1982256 → "1.98MB".
std::string human_size(std::uint64_t bytes);

/// docker's age column (go-units HumanDuration + " ago"): "Less than a second ago",
/// "About a minute ago", "3 hours ago", "2 weeks ago", "2 years ago".
std::string human_age(std::int64_t seconds);

/// Seconds since the epoch of an RFC 3339 date-time ("2023-11-14T22:13:20Z",
/// "2016-06-10T18:44:03.123+02:00"); nullopt when `text` is not one.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

/// "created" as docker shows it: the age relative to `now`, or "N/A" when unknown.
std::string created_column(std::string_view created, std::int64_t now);

/// The first 12 hex characters of a digest ("sha256:abcd…" → "abcd…"), as docker's IMAGE ID.
std::string short_id(std::string_view digest);

/// docker's CREATED BY cell: tabs and newlines as spaces, cut to `max_width` characters with a
/// trailing "…" (stringutils.Ellipsis), unless max_width is 0.
std::string ellipsis(std::string_view text, std::size_t max_width);

/// Lays out rows like docker's tabwriter (minwidth 10, padding 3): every column but the last is
/// padded to max(widest cell + 3, 10) characters (UTF-8 code points). Each line ends in '\n'.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

} // namespace minibuild::cli
