#include "json_read.hpp"

#include <minibuild/oci/image_config.hpp>

#include <array>
#include <limits>

namespace minibuild::oci {

namespace {

using detail::json;
using detail::Presence;

constexpr std::array<std::string_view, 10> k_known_top = {
    "created",    "author",      "architecture", "os",     "variant",
    "os.version", "os.features", "config",       "rootfs", "history",
};
constexpr std::array<std::string_view, 13> k_known_config = {
    "User",   "ExposedPorts", "Env",         "Entrypoint",  "Cmd",     "Volumes", "WorkingDir",
    "Labels", "StopSignal",   "ArgsEscaped", "Healthcheck", "OnBuild", "Shell",
};

template <std::size_t N>
bool is_known(const std::array<std::string_view, N>& known, std::string_view key) {
  for (auto name : known) {
    if (name == key) {
      return true;
    }
  }
  return false;
}

template <std::size_t N>
UnknownFields collect_unknown(const json& object, const std::array<std::string_view, N>& known) {
  UnknownFields unknown;
  for (const auto& [key, value] : object.items()) {
    if (!is_known(known, key)) {
      unknown.emplace(key, detail::canonical_dump(value));
    }
  }
  return unknown;
}

void put_unknown(json& out, const UnknownFields& unknown) {
  for (const auto& [key, text] : unknown) {
    if (out.contains(key)) {
      continue; // a modelled field wins
    }
    // Entries come from collect_unknown() (always valid JSON); one a caller broke is left out
    // rather than written as garbage.
    auto value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!value.is_discarded()) {
      out[key] = std::move(value);
    }
  }
}

bool all_digits(std::string_view text) {
  if (text.empty()) {
    return false;
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

int number(std::string_view digits) {
  int value = 0;
  for (char c : digits) {
    value = value * 10 + (c - '0');
  }
  return value;
}

Result<std::string> get_date_time(const json& object, std::string_view key,
                                  std::string_view parent) {
  MB_TRY_ASSIGN(const json* value, detail::member(object, key, parent, Presence::optional));
  if (value == nullptr) {
    return std::string();
  }
  // Go reads these into *time.Time, which refuses anything but RFC 3339 (even "").
  MB_TRY_ASSIGN(auto text, detail::get_string(object, key, parent, Presence::required));
  if (!is_rfc3339_date_time(text)) {
    return fail(detail::field_error(detail::path_join(parent, key),
                                    "\"" + text.substr(0, 64) + "\" is not an RFC 3339 date-time"));
  }
  return text;
}

Result<std::optional<HealthConfig>> read_healthcheck(const json& config) {
  MB_TRY_ASSIGN(const json* value,
                detail::member(config, "Healthcheck", "config", Presence::optional));
  if (value == nullptr) {
    return std::optional<HealthConfig>();
  }
  const std::string path = "config.Healthcheck";
  MB_TRY(detail::expect_object(*value, path, "Healthcheck"));
  HealthConfig health;
  MB_TRY_ASSIGN(health.test, detail::get_string_array(*value, "Test", path, Presence::optional));
  MB_TRY_ASSIGN(health.interval, detail::get_int64(*value, "Interval", path, Presence::optional));
  MB_TRY_ASSIGN(health.timeout, detail::get_int64(*value, "Timeout", path, Presence::optional));
  MB_TRY_ASSIGN(health.start_period,
                detail::get_int64(*value, "StartPeriod", path, Presence::optional));
  MB_TRY_ASSIGN(health.start_interval,
                detail::get_int64(*value, "StartInterval", path, Presence::optional));
  MB_TRY_ASSIGN(auto retries, detail::get_int64(*value, "Retries", path, Presence::optional));
  if (retries < std::numeric_limits<int>::min() || retries > std::numeric_limits<int>::max()) {
    return fail(detail::field_error(path + ".Retries", "integer out of range"));
  }
  health.retries = static_cast<int>(retries);
  return std::optional<HealthConfig>(std::move(health));
}

Result<ContainerConfig> read_container_config(const json& image) {
  ContainerConfig config;
  MB_TRY_ASSIGN(const json* value, detail::member(image, "config", "", Presence::optional));
  if (value == nullptr) {
    return config;
  }
  const std::string path = "config";
  MB_TRY(detail::expect_object(*value, path, "config"));
  using detail::get_string;
  using detail::get_string_array;
  MB_TRY_ASSIGN(config.user, get_string(*value, "User", path, Presence::optional));
  MB_TRY_ASSIGN(config.exposed_ports, detail::get_key_set(*value, "ExposedPorts", path));
  MB_TRY_ASSIGN(config.env, get_string_array(*value, "Env", path, Presence::optional));
  MB_TRY_ASSIGN(config.entrypoint,
                get_string_array(*value, "Entrypoint", path, Presence::optional));
  MB_TRY_ASSIGN(config.cmd, get_string_array(*value, "Cmd", path, Presence::optional));
  MB_TRY_ASSIGN(config.volumes, detail::get_key_set(*value, "Volumes", path));
  MB_TRY_ASSIGN(config.working_dir, get_string(*value, "WorkingDir", path, Presence::optional));
  MB_TRY_ASSIGN(config.labels, detail::get_string_map(*value, "Labels", path));
  MB_TRY_ASSIGN(config.stop_signal, get_string(*value, "StopSignal", path, Presence::optional));
  MB_TRY_ASSIGN(config.args_escaped, detail::get_bool(*value, "ArgsEscaped", path));
  MB_TRY_ASSIGN(config.healthcheck, read_healthcheck(*value));
  MB_TRY_ASSIGN(config.on_build, get_string_array(*value, "OnBuild", path, Presence::optional));
  MB_TRY_ASSIGN(config.shell, get_string_array(*value, "Shell", path, Presence::optional));
  config.unknown_fields = collect_unknown(*value, k_known_config);
  return config;
}

Result<RootFs> read_rootfs(const json& image) {
  MB_TRY_ASSIGN(const json* value, detail::member(image, "rootfs", "", Presence::required));
  MB_TRY(detail::expect_object(*value, "rootfs", "rootfs"));
  RootFs rootfs;
  MB_TRY_ASSIGN(rootfs.type, detail::get_string(*value, "type", "rootfs", Presence::required));
  if (rootfs.type != "layers") {
    return fail(detail::field_error("rootfs.type",
                                    "\"" + rootfs.type.substr(0, 64) + "\" is not \"layers\""));
  }
  // Required by the schema, but some tools write null for an image without layers; Go reads
  // that as empty, and so do we.
  if (!value->contains("diff_ids")) {
    return fail(detail::field_error("rootfs.diff_ids", "required field is missing"));
  }
  MB_TRY_ASSIGN(const json* ids, detail::member(*value, "diff_ids", "rootfs", Presence::optional));
  if (ids == nullptr) {
    return rootfs;
  }
  if (!ids->is_array()) {
    return fail(detail::field_error("rootfs.diff_ids", "expected an array, found " +
                                                           std::string(detail::type_name(*ids))));
  }
  for (std::size_t i = 0; i < ids->size(); ++i) {
    MB_TRY_ASSIGN(auto digest,
                  detail::to_digest((*ids)[i], detail::path_index("rootfs.diff_ids", i)));
    rootfs.diff_ids.push_back(std::move(digest));
  }
  return rootfs;
}

Result<std::vector<History>> read_history(const json& image) {
  std::vector<History> history;
  MB_TRY_ASSIGN(const json* value, detail::member(image, "history", "", Presence::optional));
  if (value == nullptr) {
    return history;
  }
  if (!value->is_array()) {
    return fail(detail::field_error("history", "expected an array, found " +
                                                   std::string(detail::type_name(*value))));
  }
  for (std::size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    auto path = detail::path_index("history", i);
    MB_TRY(detail::expect_object(item, path, "history entry"));
    History entry;
    MB_TRY_ASSIGN(entry.created, get_date_time(item, "created", path));
    MB_TRY_ASSIGN(entry.created_by,
                  detail::get_string(item, "created_by", path, Presence::optional));
    MB_TRY_ASSIGN(entry.author, detail::get_string(item, "author", path, Presence::optional));
    MB_TRY_ASSIGN(entry.comment, detail::get_string(item, "comment", path, Presence::optional));
    MB_TRY_ASSIGN(entry.empty_layer, detail::get_bool(item, "empty_layer", path));
    history.push_back(std::move(entry));
  }
  return history;
}

template <typename Container>
void put_if_not_empty(json& out, const char* key, const Container& value) {
  if (!value.empty()) {
    out[key] = value;
  }
}

json set_to_json(const std::set<std::string>& keys) {
  json out = json::object();
  for (const auto& key : keys) {
    out[key] = json::object();
  }
  return out;
}

json container_config_to_json(const ContainerConfig& config) {
  json out = json::object();
  put_if_not_empty(out, "User", config.user);
  if (!config.exposed_ports.empty()) {
    out["ExposedPorts"] = set_to_json(config.exposed_ports);
  }
  put_if_not_empty(out, "Env", config.env);
  put_if_not_empty(out, "Entrypoint", config.entrypoint);
  put_if_not_empty(out, "Cmd", config.cmd);
  if (!config.volumes.empty()) {
    out["Volumes"] = set_to_json(config.volumes);
  }
  put_if_not_empty(out, "WorkingDir", config.working_dir);
  put_if_not_empty(out, "Labels", config.labels);
  put_if_not_empty(out, "StopSignal", config.stop_signal);
  if (config.args_escaped) {
    out["ArgsEscaped"] = true;
  }
  if (config.healthcheck) {
    const auto& health = *config.healthcheck;
    json h = json::object();
    put_if_not_empty(h, "Test", health.test);
    auto put_nonzero = [&h](const char* key, std::int64_t value) {
      if (value != 0) {
        h[key] = value;
      }
    };
    put_nonzero("Interval", health.interval);
    put_nonzero("Timeout", health.timeout);
    put_nonzero("StartPeriod", health.start_period);
    put_nonzero("StartInterval", health.start_interval);
    put_nonzero("Retries", health.retries);
    out["Healthcheck"] = std::move(h);
  }
  put_if_not_empty(out, "OnBuild", config.on_build);
  put_if_not_empty(out, "Shell", config.shell);
  put_unknown(out, config.unknown_fields);
  return out;
}

} // namespace

Platform platform_of(const ImageConfig& config) {
  Platform platform;
  platform.os = config.os;
  platform.architecture = config.architecture;
  platform.variant = config.variant;
  platform.os_version = config.os_version;
  platform.os_features = config.os_features;
  return platform;
}

template <>
Result<ImageConfig> from_json<ImageConfig>(const nlohmann::json& json) {
  using detail::get_string;
  MB_TRY(detail::expect_object(json, "", "image config"));
  ImageConfig config;
  MB_TRY_ASSIGN(config.created, get_date_time(json, "created", ""));
  MB_TRY_ASSIGN(config.author, get_string(json, "author", "", Presence::optional));
  MB_TRY_ASSIGN(config.architecture, get_string(json, "architecture", "", Presence::required));
  MB_TRY_ASSIGN(config.os, get_string(json, "os", "", Presence::required));
  MB_TRY_ASSIGN(config.variant, get_string(json, "variant", "", Presence::optional));
  MB_TRY_ASSIGN(config.os_version, get_string(json, "os.version", "", Presence::optional));
  MB_TRY_ASSIGN(config.os_features,
                detail::get_string_array(json, "os.features", "", Presence::optional));
  MB_TRY_ASSIGN(config.config, read_container_config(json));
  MB_TRY_ASSIGN(config.rootfs, read_rootfs(json));
  MB_TRY_ASSIGN(config.history, read_history(json));
  config.unknown_fields = collect_unknown(json, k_known_top);
  return config;
}

nlohmann::json to_json(const ImageConfig& config) {
  json out = json::object();
  put_if_not_empty(out, "created", config.created);
  put_if_not_empty(out, "author", config.author);
  out["architecture"] = config.architecture;
  out["os"] = config.os;
  put_if_not_empty(out, "variant", config.variant);
  put_if_not_empty(out, "os.version", config.os_version);
  put_if_not_empty(out, "os.features", config.os_features);
  out["config"] = container_config_to_json(config.config);
  json rootfs = json::object();
  rootfs["type"] = config.rootfs.type;
  rootfs["diff_ids"] = json::array();
  for (const auto& id : config.rootfs.diff_ids) {
    rootfs["diff_ids"].push_back(id.to_string());
  }
  out["rootfs"] = std::move(rootfs);
  if (!config.history.empty()) {
    json history = json::array();
    for (const auto& entry : config.history) {
      json item = json::object();
      put_if_not_empty(item, "created", entry.created);
      put_if_not_empty(item, "created_by", entry.created_by);
      put_if_not_empty(item, "author", entry.author);
      put_if_not_empty(item, "comment", entry.comment);
      if (entry.empty_layer) {
        item["empty_layer"] = true;
      }
      history.push_back(std::move(item));
    }
    out["history"] = std::move(history);
  }
  put_unknown(out, config.unknown_fields);
  return out;
}

std::string serialize(const ImageConfig& config) {
  return detail::canonical_dump(to_json(config));
}

bool is_rfc3339_date_time(std::string_view text) {
  // full-date "T" partial-time time-offset (RFC 3339 §5.6); 't'/'z' allowed as the RFC notes.
  if (text.size() < 20) {
    return false;
  }
  auto at = [&](std::size_t i) { return text[i]; };
  if (!all_digits(text.substr(0, 4)) || at(4) != '-' || !all_digits(text.substr(5, 2)) ||
      at(7) != '-' || !all_digits(text.substr(8, 2)) || (at(10) != 'T' && at(10) != 't') ||
      !all_digits(text.substr(11, 2)) || at(13) != ':' || !all_digits(text.substr(14, 2)) ||
      at(16) != ':' || !all_digits(text.substr(17, 2))) {
    return false;
  }
  int year = number(text.substr(0, 4));
  int month = number(text.substr(5, 2));
  int day = number(text.substr(8, 2));
  int hour = number(text.substr(11, 2));
  int minute = number(text.substr(14, 2));
  int second = number(text.substr(17, 2));
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  constexpr std::array<int, 12> k_days = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 ||
      day > k_days[static_cast<std::size_t>(month - 1)] + (month == 2 && leap ? 1 : 0) ||
      hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  std::size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    std::size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      ++i;
    }
    if (i == start) {
      return false;
    }
  }
  auto offset = text.substr(i);
  if (offset == "Z" || offset == "z") {
    return true;
  }
  if (offset.size() != 6 || (offset[0] != '+' && offset[0] != '-') ||
      !all_digits(offset.substr(1, 2)) || offset[3] != ':' || !all_digits(offset.substr(4, 2))) {
    return false;
  }
  return number(offset.substr(1, 2)) <= 23 && number(offset.substr(4, 2)) <= 59;
}

} // namespace minibuild::oci
