#include "image_config_builder.hpp"

#include <cstdio>

namespace minibuild::build {

namespace {

using dockerfile::Instruction;
using dockerfile::InstructionKind;

std::uint64_t append_fraction(std::string& out, std::uint64_t v, int prec) {
  std::string digits;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    const std::uint64_t digit = v % 10;
    print = print || digit != 0;
    if (print) {
      digits.insert(digits.begin(), static_cast<char>('0' + digit));
    }
    v /= 10;
  }
  if (print) {
    out.insert(0, "." + digits);
  }
  return v;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) {
      out += separator;
    }
    out += items[i];
  }
  return out;
}

std::string env_key(std::string_view entry) {
  return std::string(entry.substr(0, entry.find('=')));
}

// path.Clean for absolute slash paths.
std::string clean_absolute(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) {
        parts.pop_back();
      }
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    start = end + 1;
  }
  return "/" + join(parts, "/");
}

} // namespace

std::string go_quoted_list(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const auto& item : items) {
    quoted.push_back(go_quote(item));
  }
  return "[" + join(quoted, " ") + "]";
}

std::string go_list(const std::vector<std::string>& items) {
  return "[" + join(items, " ") + "]";
}

std::string go_duration(std::int64_t nanoseconds) {
  const bool negative = nanoseconds < 0;
  std::uint64_t u = negative ? 0 - static_cast<std::uint64_t>(nanoseconds)
                             : static_cast<std::uint64_t>(nanoseconds);
  constexpr std::uint64_t k_second = 1000000000;
  std::string out;
  if (u < k_second) {
    if (u == 0) {
      return "0s";
    }
    int prec = 0;
    std::string unit;
    if (u < 1000) {
      unit = "ns";
    } else if (u < 1000000) {
      prec = 3;
      unit = "\xC2\xB5s"; // "µs", as Go writes it (U+00B5)
    } else {
      prec = 6;
      unit = "ms";
    }
    out = unit;
    u = append_fraction(out, u, prec);
    out.insert(0, std::to_string(u));
  } else {
    out = "s";
    u = append_fraction(out, u, 9);
    out.insert(0, std::to_string(u % 60));
    u /= 60;
    if (u > 0) {
      out.insert(0, std::to_string(u % 60) + "m");
      u /= 60;
      if (u > 0) {
        out.insert(0, std::to_string(u) + "h");
      }
    }
  }
  return negative ? "-" + out : out;
}

std::string rfc3339_utc(std::int64_t seconds, std::int64_t nanoseconds) {
  // Days to civil date (Howard Hinnant's algorithm), so any int64 time formats without
  // depending on the range of time_t or the process's time zone.
  std::int64_t days = seconds / 86400;
  std::int64_t rest = seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    days -= 1;
  }
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld",
                static_cast<long long>(year), static_cast<long long>(month),
                static_cast<long long>(day), static_cast<long long>(rest / 3600),
                static_cast<long long>(rest / 60 % 60), static_cast<long long>(rest % 60));
  std::string out = buffer;
  if (nanoseconds > 0) {
    std::snprintf(buffer, sizeof(buffer), "%09lld", static_cast<long long>(nanoseconds));
    std::string fraction = buffer;
    while (!fraction.empty() && fraction.back() == '0') {
      fraction.pop_back();
    }
    out += "." + fraction;
  }
  return out + "Z";
}

std::string normalize_workdir(std::string_view current, std::string_view requested) {
  if (!requested.empty() && requested.front() == '/') {
    return clean_absolute(requested);
  }
  const std::string base = current.empty() ? "/" : std::string(current);
  return clean_absolute(base + "/" + std::string(requested));
}

std::vector<std::string> expand_port_spec(std::string_view spec) {
  std::string_view ports = spec;
  std::string proto = "tcp";
  if (const auto slash = spec.find('/'); slash != std::string_view::npos) {
    ports = spec.substr(0, slash);
    proto.clear();
    for (char c : spec.substr(slash + 1)) {
      proto += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (proto.empty()) {
      proto = "tcp";
    }
  }
  const auto dash = ports.find('-');
  const unsigned long first = std::stoul(std::string(ports.substr(0, dash)));
  const unsigned long last =
      dash == std::string_view::npos ? first : std::stoul(std::string(ports.substr(dash + 1)));
  std::vector<std::string> out;
  for (unsigned long port = first; port <= last; ++port) {
    out.push_back(std::to_string(port) + "/" + proto);
  }
  return out;
}

namespace {

template <typename Step>
std::string copy_message(std::string verb, const Step& step, bool parents) {
  std::string message = std::move(verb);
  if (parents) {
    message += " --parents";
  }
  if (!step.chown.empty()) {
    message += " --chown=" + step.chown;
  }
  if (!step.chmod.empty()) {
    message += " --chmod=" + step.chmod;
  }
  for (const auto& source : step.sources) {
    message += " " + source;
  }
  for (const auto& source : step.inline_sources) {
    message += " <<" + source.name;
  }
  return message + " " + step.dest;
}

} // namespace

std::string copy_created_by(const dockerfile::CopyInstruction& copy) {
  return copy_message("COPY", copy, copy.parents);
}

std::string add_created_by(const dockerfile::AddInstruction& add) {
  return copy_message("ADD", add, false);
}

oci::ImageConfig ImageConfigBuilder::empty_image(const dockerfile::Platform& platform) {
  oci::ImageConfig config;
  config.os = platform.os;
  config.architecture = platform.architecture;
  config.variant = platform.variant;
  config.config.working_dir = "/";
  config.config.env.push_back("PATH=" + std::string(k_default_path));
  return config;
}

void ImageConfigBuilder::start_stage(const dockerfile::Platform& platform) {
  // BuildKit reads the base config into its own Go types, so fields they lack are gone from
  // the result (container_config, docker_version, config.Hostname, ...), and it clears
  // `created` (the exporter sets it) and OnBuild (the triggers run in this stage instead).
  m_config.unknown_fields.clear();
  m_config.config.unknown_fields.clear();
  m_config.created.clear();
  m_config.config.on_build.clear();
  m_config.os = platform.os;
  m_config.architecture = platform.architecture;
  m_config.variant = platform.variant;
  bool has_path = false;
  for (const auto& entry : m_config.config.env) {
    has_path = has_path || env_key(entry) == "PATH";
  }
  if (!has_path) {
    m_config.config.env.push_back("PATH=" + std::string(k_default_path));
  }
}

std::vector<std::string>
ImageConfigBuilder::with_shell(const dockerfile::CommandLine& command) const {
  if (!command.shell_form) {
    return command.args;
  }
  std::vector<std::string> args = m_config.config.shell.empty()
                                      ? std::vector<std::string>{"/bin/sh", "-c"}
                                      : m_config.config.shell;
  args.push_back(join(command.args, " "));
  return args;
}

void ImageConfigBuilder::add_history(std::string created_by, bool empty_layer) {
  oci::History entry;
  entry.created = m_history_time;
  entry.created_by = std::move(created_by);
  entry.comment = std::string(k_history_comment);
  entry.empty_layer = empty_layer;
  m_config.history.push_back(std::move(entry));
}

void ImageConfigBuilder::add_arg(const std::vector<ArgRecord>& args) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : args) {
    parts.push_back(value ? name + "=" + *value : name);
  }
  add_history("ARG " + join(parts, " "), true);
}

std::string ImageConfigBuilder::set_workdir(std::string_view path) {
  m_config.config.working_dir = normalize_workdir(m_config.config.working_dir, path);
  return m_config.config.working_dir;
}

void ImageConfigBuilder::add_workdir_history(const std::string& workdir, bool layer) {
  add_history("WORKDIR " + workdir, !layer);
}

void ImageConfigBuilder::add_layer(const oci::Digest& diff_id, const std::string& created_by) {
  m_config.rootfs.diff_ids.push_back(diff_id);
  add_history(created_by + " # buildkit", false);
}

Result<void> ImageConfigBuilder::apply(const Instruction& expanded) {
  auto& config = m_config.config;
  switch (expanded.kind()) {
  case InstructionKind::cmd: {
    config.cmd = with_shell(expanded.as<dockerfile::CmdInstruction>().command);
    config.args_escaped = true;
    m_cmd_set = true;
    add_history("CMD " + go_quoted_list(config.cmd), true);
    return {};
  }
  case InstructionKind::entrypoint: {
    config.entrypoint = with_shell(expanded.as<dockerfile::EntrypointInstruction>().command);
    if (!m_cmd_set) {
      config.cmd.clear();
    }
    add_history("ENTRYPOINT " + go_quoted_list(config.entrypoint), true);
    return {};
  }
  case InstructionKind::label: {
    std::string message = "LABEL";
    for (const auto& label : expanded.as<dockerfile::LabelInstruction>().labels) {
      config.labels[label.key] = label.value;
      message += " " + label.key + "=" + label.value;
    }
    add_history(std::move(message), true);
    return {};
  }
  case InstructionKind::maintainer: {
    m_config.author = expanded.as<dockerfile::MaintainerInstruction>().name;
    add_history("MAINTAINER " + m_config.author, true);
    return {};
  }
  case InstructionKind::expose: {
    std::vector<std::string> ports;
    for (const auto& word : expanded.as<dockerfile::ExposeInstruction>().ports) {
      for (auto& port : expand_port_spec(word)) {
        config.exposed_ports.insert(port);
        ports.push_back(std::move(port));
      }
    }
    add_history("EXPOSE " + go_list(ports), true);
    return {};
  }
  case InstructionKind::env: {
    std::string message = "ENV";
    for (const auto& variable : expanded.as<dockerfile::EnvInstruction>().variables) {
      std::string entry = variable.key + "=" + variable.value;
      message += " " + entry;
      bool replaced = false;
      for (auto& existing : config.env) {
        if (env_key(existing) == variable.key) {
          existing = entry;
          replaced = true;
          break;
        }
      }
      if (!replaced) {
        config.env.push_back(std::move(entry));
      }
    }
    add_history(std::move(message), true);
    return {};
  }
  case InstructionKind::volume: {
    const auto& paths = expanded.as<dockerfile::VolumeInstruction>().paths;
    for (const auto& path : paths) {
      if (path.empty()) {
        return fail(Code::dockerfile, "VOLUME specified can not be an empty string");
      }
      config.volumes.insert(path);
    }
    add_history("VOLUME " + go_list(paths), true);
    return {};
  }
  case InstructionKind::user: {
    config.user = expanded.as<dockerfile::UserInstruction>().user;
    add_history("USER " + config.user, true);
    return {};
  }
  case InstructionKind::stopsignal: {
    config.stop_signal = expanded.as<dockerfile::StopsignalInstruction>().signal;
    add_history("STOPSIGNAL " + config.stop_signal, true);
    return {};
  }
  case InstructionKind::healthcheck: {
    const auto& health = expanded.as<dockerfile::HealthcheckInstruction>();
    oci::HealthConfig out;
    out.test = health.test;
    out.interval = health.interval.count();
    out.timeout = health.timeout.count();
    out.start_period = health.start_period.count();
    out.start_interval = health.start_interval.count();
    out.retries = health.retries;
    config.healthcheck = out;
    add_history("HEALTHCHECK {Test:" + go_list(out.test) + " Interval:" +
                    go_duration(out.interval) + " Timeout:" + go_duration(out.timeout) +
                    " StartPeriod:" + go_duration(out.start_period) +
                    " StartInterval:" + go_duration(out.start_interval) +
                    " Retries:" + std::to_string(out.retries) + "}",
                true);
    return {};
  }
  case InstructionKind::shell: {
    config.shell = expanded.as<dockerfile::ShellInstruction>().shell;
    add_history("SHELL " + go_list(config.shell), true);
    return {};
  }
  case InstructionKind::onbuild:
    // BuildKit records the trigger and writes no history entry for it.
    config.on_build.push_back(expanded.as<dockerfile::OnbuildInstruction>().expression);
    return {};
  case InstructionKind::from:
  case InstructionKind::run:
  case InstructionKind::add:
  case InstructionKind::copy:
  case InstructionKind::workdir:
  case InstructionKind::arg:
    break;
  }
  return fail(Code::internal, std::string(dockerfile::instruction_name(expanded.kind())) +
                                  " is not a metadata-only instruction");
}

} // namespace minibuild::build
