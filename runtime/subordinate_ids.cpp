// Parsing /etc/subuid and /etc/subgid, and planning the id map of the user namespace.

#include <minibuild/runtime/user_namespace.hpp>

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>

namespace minibuild::runtime {
namespace {

// uid_t is 32 bits and (uid_t)-1 means "no id" to chown(2) and setresuid(2), so the highest id a
// range may hold is 4294967294.
constexpr std::uint64_t k_id_limit = 0xFFFFFFFFULL;

// user_namespaces(7): since Linux 4.15 a map holds at most 340 lines.
constexpr std::size_t k_max_map_lines = 340;

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

std::optional<std::uint64_t> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > 10) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// One map (uids or gids): container 0 → own_id, then the subordinate ids in order.
std::vector<layer::IdRange>
plan_one(std::uint32_t own_id, const std::vector<layer::IdRange>& subordinate, std::uint32_t size) {
  std::vector<layer::IdRange> map{{0, own_id, 1}};
  // Host intervals [first, second) already mapped: the kernel rejects overlapping host ranges,
  // and /etc/subuid may repeat or overlap entries, or even contain the user's own id.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> used{{own_id, std::uint64_t{own_id} + 1}};
  std::uint64_t remaining = size;
  std::uint64_t next_container = 1;
  for (const auto& range : subordinate) {
    std::uint64_t cursor = range.host_id;
    const std::uint64_t end =
        std::min<std::uint64_t>(range.host_id + std::uint64_t{range.size}, k_id_limit);
    while (cursor < end && remaining > 0 && map.size() < k_max_map_lines) {
      std::uint64_t piece_end = std::min(end, cursor + remaining);
      bool skipped = false;
      for (const auto& [first, last] : used) {
        if (first <= cursor && cursor < last) {
          cursor = last;
          skipped = true;
          break;
        }
        if (cursor < first && first < piece_end) {
          piece_end = first;
        }
      }
      if (skipped) {
        continue;
      }
      const std::uint64_t length = piece_end - cursor;
      map.push_back({static_cast<std::uint32_t>(next_container), static_cast<std::uint32_t>(cursor),
                     static_cast<std::uint32_t>(length)});
      used.emplace_back(cursor, piece_end);
      next_container += length;
      remaining -= length;
      cursor = piece_end;
    }
  }
  return map;
}

std::uint32_t mapped_count(const std::vector<layer::IdRange>& map) {
  std::uint64_t count = 0;
  for (const auto& range : map) {
    count += range.size;
  }
  return static_cast<std::uint32_t>(count);
}

} // namespace

Result<std::vector<layer::IdRange>> parse_subordinate_ids(std::string_view file_text,
                                                          std::string_view user_name, uid_t uid,
                                                          std::string_view file_name) {
  const std::string uid_text = std::to_string(uid);
  std::vector<layer::IdRange> ranges;
  int line_number = 0;
  while (!file_text.empty()) {
    ++line_number;
    const auto newline = file_text.find('\n');
    const std::string_view raw = file_text.substr(0, newline);
    file_text =
        newline == std::string_view::npos ? std::string_view{} : file_text.substr(newline + 1);
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') {
      continue;
    }
    const auto malformed = [&](std::string_view why) {
      return fail(Error(Code::io, "malformed entry \"" + std::string(line) +
                                      "\": " + std::string(why) + " (expected NAME:START:COUNT)")
                      .at(SourceRange{std::string(file_name), line_number, 0, line_number}));
    };
    const auto first_colon = line.find(':');
    const auto second_colon =
        first_colon == std::string_view::npos ? first_colon : line.find(':', first_colon + 1);
    if (second_colon == std::string_view::npos ||
        line.find(':', second_colon + 1) != std::string_view::npos) {
      return malformed("not three fields");
    }
    const std::string_view name = line.substr(0, first_colon);
    const auto start = parse_decimal(line.substr(first_colon + 1, second_colon - first_colon - 1));
    const auto count = parse_decimal(line.substr(second_colon + 1));
    if (name.empty()) {
      return malformed("empty name");
    }
    if (!start || !count) {
      return malformed("START and COUNT must be decimal numbers");
    }
    if (*count == 0) {
      return malformed("COUNT is 0");
    }
    if (*start + *count > k_id_limit) {
      return malformed("the range goes past id 4294967294");
    }
    if (name == user_name || name == uid_text) {
      ranges.push_back({0, static_cast<std::uint32_t>(*start), static_cast<std::uint32_t>(*count)});
    }
  }
  return ranges;
}

IdMapPlan plan_id_map(uid_t uid, gid_t gid, const std::vector<layer::IdRange>& subuids,
                      const std::vector<layer::IdRange>& subgids, std::uint32_t size) {
  IdMapPlan plan;
  if (subuids.empty() || subgids.empty()) {
    plan.kind = IdMapKind::single_id;
    plan.map.uids = {{0, uid, 1}};
    plan.map.gids = {{0, gid, 1}};
  } else {
    plan.kind = IdMapKind::subordinate;
    plan.map.uids = plan_one(uid, subuids, size);
    plan.map.gids = plan_one(gid, subgids, size);
  }
  plan.uid_count = mapped_count(plan.map.uids);
  plan.gid_count = mapped_count(plan.map.gids);
  return plan;
}

} // namespace minibuild::runtime
