// The --output parser and the dispatch to the three exporters.
#include <minibuild/build/outputs.hpp>

#include <map>

namespace minibuild::build {

namespace {

// Splits a CSV record as docker buildx does (Go encoding/csv, LazyQuotes off): a field that
// starts with '"' runs to the matching quote, "" inside it is one quote, and a quote inside an
// unquoted field is an error.
Result<std::vector<std::string>> split_csv(std::string_view value) {
  std::vector<std::string> fields;
  std::size_t i = 0;
  while (true) {
    std::string field;
    if (i < value.size() && value[i] == '"') {
      ++i;
      bool closed = false;
      while (i < value.size()) {
        if (value[i] == '"') {
          if (i + 1 < value.size() && value[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        field += value[i++];
      }
      if (!closed) {
        return fail(Code::usage, "unterminated quote");
      }
      if (i < value.size() && value[i] != ',') {
        return fail(Code::usage, "unexpected character after a quoted field");
      }
    } else {
      while (i < value.size() && value[i] != ',') {
        if (value[i] == '"') {
          return fail(Code::usage, "a quote inside an unquoted field (quote the whole field: "
                                   "\"dest=a,b\")");
        }
        field += value[i++];
      }
    }
    fields.push_back(std::move(field));
    if (i >= value.size()) {
      return fields;
    }
    ++i; // the comma
  }
}

std::optional<OutputType> type_from_name(std::string_view name) {
  if (name == "oci") {
    return OutputType::oci_layout;
  }
  if (name == "oci-archive") {
    return OutputType::oci_archive;
  }
  if (name == "docker-archive") {
    return OutputType::docker_archive;
  }
  return std::nullopt;
}

} // namespace

std::string_view output_type_name(OutputType type) {
  switch (type) {
  case OutputType::oci_layout:
    return "oci";
  case OutputType::oci_archive:
    return "oci-archive";
  case OutputType::docker_archive:
    return "docker-archive";
  }
  return "unknown";
}

Result<OutputSpec> parse_output_spec(std::string_view value) {
  const std::string quoted = "--output \"" + std::string(value) + "\": ";
  auto fields = split_csv(value);
  if (!fields) {
    return fail(Code::usage, quoted + fields.error().message());
  }
  std::map<std::string, std::string> pairs;
  for (const auto& field : *fields) {
    auto equals = field.find('=');
    if (equals == std::string::npos) {
      return fail(Code::usage, quoted + "field \"" + field +
                                   "\" is not KEY=VALUE (expected "
                                   "type=oci|oci-archive|docker-archive,dest=PATH)");
    }
    std::string key = field.substr(0, equals);
    if (key != "type" && key != "dest") {
      return fail(Code::usage, quoted + "unknown key \"" + key + "\" (supported: type, dest)");
    }
    if (!pairs.emplace(key, field.substr(equals + 1)).second) {
      return fail(Code::usage, quoted + "\"" + key + "\" is given twice");
    }
  }
  auto type_field = pairs.find("type");
  if (type_field == pairs.end()) {
    return fail(Code::usage, quoted + "missing type= (oci, oci-archive or docker-archive)");
  }
  auto type = type_from_name(type_field->second);
  if (!type) {
    return fail(Code::usage, quoted + "unknown output type \"" + type_field->second +
                                 "\" (supported: oci, oci-archive, docker-archive)");
  }
  auto dest = pairs.find("dest");
  if (dest == pairs.end() || dest->second.empty()) {
    return fail(Code::usage, quoted + "missing dest=PATH");
  }
  if (*type == OutputType::oci_layout && dest->second == "-") {
    return fail(Code::usage, quoted + "type=oci writes a directory and cannot go to standard "
                                      "output (use type=oci-archive,dest=-)");
  }
  return OutputSpec{*type, dest->second};
}

Result<std::vector<OutputSpec>> parse_output_specs(const std::vector<std::string>& values) {
  std::vector<OutputSpec> specs;
  bool to_stdout = false;
  for (const auto& value : values) {
    MB_TRY_ASSIGN(auto spec, parse_output_spec(value));
    if (spec.dest == "-") {
      if (to_stdout) {
        return fail(Code::usage, "--output: only one output can write to standard output");
      }
      to_stdout = true;
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

Result<void> write_output(store::BlobStore& blobs, const ImageToExport& image,
                          const OutputSpec& spec, const OutputOptions& options) {
  Result<void> written;
  switch (spec.type) {
  case OutputType::oci_layout:
    written = write_oci_layout(blobs, image, spec.dest);
    break;
  case OutputType::oci_archive:
    written = write_oci_archive(blobs, image, spec.dest, options);
    break;
  case OutputType::docker_archive:
    written = write_docker_archive(blobs, image, spec.dest, options);
    break;
  }
  if (!written) {
    return fail(std::move(written).error().wrap(
        "output type=" + std::string(output_type_name(spec.type)) + ",dest=" + spec.dest));
  }
  return {};
}

std::string familiar_name(std::string_view name) {
  constexpr std::string_view k_library = "docker.io/library/";
  constexpr std::string_view k_docker_io = "docker.io/";
  if (name.substr(0, k_library.size()) == k_library &&
      name.find('/', k_library.size()) == std::string_view::npos) {
    return std::string(name.substr(k_library.size()));
  }
  if (name.substr(0, k_docker_io.size()) == k_docker_io) {
    return std::string(name.substr(k_docker_io.size()));
  }
  return std::string(name);
}

} // namespace minibuild::build
