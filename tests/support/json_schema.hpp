// Test-only: a small JSON Schema draft-04 validator, enough for the OCI image-spec schemas.
//
// Header-only so both test executables can use it without a build change. Supported keywords:
// $ref (to a registered document by name or alias, or to a JSON pointer fragment such as
// "#/definitions/x"), type, enum, minimum/maximum (+ draft-04 boolean exclusive*), minLength,
// maxLength, pattern (std::regex ECMAScript, unanchored as the spec says), format ("date-time"
// per RFC 3339, "uri" as an absolute RFC 3986 URI; other formats are not asserted), the
// "media": {"binaryEncoding": "base64"} annotation (standard padded base64, as the OCI
// conformance rules ask), items (schema or tuple) and additionalItems, minItems, maxItems,
// uniqueItems, properties, patternProperties, additionalProperties, required, minProperties,
// maxProperties, allOf, anyOf, oneOf, not. Unknown keywords are ignored, as draft-04 says.
// "id" does not change how $ref resolves: a reference is looked up by its full text, then by its
// last path segment (the file name), which is how the OCI schemas are laid out on disk.
#pragma once

#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace minibuild::test {

class JsonSchemaSet {
public:
  /// Registers a schema document under `name` (e.g. "defs.json") and under each alias (e.g.
  /// "https://opencontainers.org/schema/defs.json"). The document is shared, not copied twice.
  void add(const std::string& name, nlohmann::json schema,
           const std::vector<std::string>& aliases = {}) {
    auto document = std::make_shared<const nlohmann::json>(std::move(schema));
    m_documents[name] = document;
    for (const auto& alias : aliases) {
      m_documents[alias] = document;
    }
  }

  /// Validates `instance` against the registered document `root`. Returns one message per
  /// violation ("/layers/0/size: -1 is less than the minimum 0"); empty means valid. A schema
  /// problem (unresolvable $ref, bad regex) is reported as a violation, never thrown.
  std::vector<std::string> validate(const nlohmann::json& instance, const std::string& root) const {
    std::vector<std::string> errors;
    auto it = m_documents.find(root);
    if (it == m_documents.end()) {
      errors.push_back("no schema registered as \"" + root + "\"");
      return errors;
    }
    check(*it->second, instance, *it->second, "", errors, 0);
    return errors;
  }

  // The format checks, public so tests can table-test them.

  /// RFC 3339 §5.6 date-time, with ranges of month, day (leap years), hour, minute, second.
  static bool is_date_time(const std::string& text) {
    static const std::regex k_shape(
        R"(^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$)");
    std::smatch m;
    if (!std::regex_match(text, m, k_shape)) {
      return false;
    }
    int year = std::stoi(m[1]);
    int month = std::stoi(m[2]);
    int day = std::stoi(m[3]);
    static const int k_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12 || day < 1 || day > k_days[month - 1] + (month == 2 && leap)) {
      return false;
    }
    if (std::stoi(m[4]) > 23 || std::stoi(m[5]) > 59 || std::stoi(m[6]) > 60) {
      return false;
    }
    if (m[9].matched && (std::stoi(m[9]) > 23 || std::stoi(m[10]) > 59)) {
      return false;
    }
    return true;
  }

  /// An absolute URI (RFC 3986 §4.3 plus fragment): a scheme, ':', then only URI characters,
  /// with '%' always followed by two hex digits.
  static bool is_uri(const std::string& text) {
    static const std::regex k_scheme(R"(^[A-Za-z][A-Za-z0-9+.-]*:)");
    std::smatch m;
    if (!std::regex_search(text, m, k_scheme)) {
      return false;
    }
    const std::string allowed = "-._~:/?#[]@!$&'()*+,;=";
    for (std::size_t i = static_cast<std::size_t>(m.length(0)); i < text.size(); ++i) {
      auto c = static_cast<unsigned char>(text[i]);
      if (c == '%') {
        if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
          return false;
        }
        i += 2;
      } else if (!std::isalnum(c) && allowed.find(static_cast<char>(c)) == std::string::npos) {
        return false;
      }
    }
    return true;
  }

  /// Standard base64 (RFC 4648 §4) with the padding that makes the length a multiple of 4.
  static bool is_padded_base64(const std::string& text) {
    static const std::regex k_base64(
        R"(^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$)");
    return std::regex_match(text, k_base64);
  }

private:
  using json = nlohmann::json;
  static constexpr int k_max_depth = 200;

  std::map<std::string, std::shared_ptr<const json>> m_documents;
  mutable std::map<std::string, std::regex> m_regex_cache;

  static void add_error(std::vector<std::string>& errors, const std::string& path,
                        const std::string& message) {
    errors.push_back((path.empty() ? "/" : path) + ": " + message);
  }

  static std::string short_dump(const json& value) {
    auto text = value.dump();
    return text.size() > 60 ? text.substr(0, 60) + "…" : text;
  }

  // -1, 0, 1; exact for integers of either signedness, via double otherwise.
  static int compare_numbers(const json& a, const json& b) {
    if (a.is_number_integer() && b.is_number_integer()) {
      bool a_neg = !a.is_number_unsigned() && a.get<std::int64_t>() < 0;
      bool b_neg = !b.is_number_unsigned() && b.get<std::int64_t>() < 0;
      if (a_neg != b_neg) {
        return a_neg ? -1 : 1;
      }
      if (a_neg) {
        auto x = a.get<std::int64_t>();
        auto y = b.get<std::int64_t>();
        return x < y ? -1 : (x > y ? 1 : 0);
      }
      auto x = a.get<std::uint64_t>();
      auto y = b.get<std::uint64_t>();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    auto x = a.get<double>();
    auto y = b.get<double>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }

  static bool has_type(const json& instance, const std::string& type) {
    if (type == "object") {
      return instance.is_object();
    }
    if (type == "array") {
      return instance.is_array();
    }
    if (type == "string") {
      return instance.is_string();
    }
    if (type == "boolean") {
      return instance.is_boolean();
    }
    if (type == "null") {
      return instance.is_null();
    }
    if (type == "number") {
      return instance.is_number();
    }
    if (type == "integer") {
      if (instance.is_number_integer()) {
        return true;
      }
      return instance.is_number_float() && std::isfinite(instance.get<double>()) &&
             std::floor(instance.get<double>()) == instance.get<double>();
    }
    return false;
  }

  static std::size_t utf8_length(const std::string& text) {
    std::size_t count = 0;
    for (unsigned char c : text) {
      if ((c & 0xC0) != 0x80) {
        ++count;
      }
    }
    return count;
  }

  const std::regex* regex_for(const std::string& pattern, std::vector<std::string>& errors,
                              const std::string& path) const {
    auto it = m_regex_cache.find(pattern);
    if (it == m_regex_cache.end()) {
      try {
        it = m_regex_cache.emplace(pattern, std::regex(pattern, std::regex::ECMAScript)).first;
      } catch (const std::regex_error& error) {
        add_error(errors, path, "schema has an invalid pattern " + pattern + ": " + error.what());
        return nullptr;
      }
    }
    return &it->second;
  }

  struct Resolved {
    const json* schema = nullptr;
    const json* document = nullptr;
  };

  Resolved resolve(const std::string& ref, const json& current_document) const {
    auto hash = ref.find('#');
    std::string location = ref.substr(0, hash);
    std::string fragment = hash == std::string::npos ? "" : ref.substr(hash + 1);
    const json* document = &current_document;
    if (!location.empty()) {
      auto it = m_documents.find(location);
      if (it == m_documents.end()) {
        auto slash = location.rfind('/');
        it = m_documents.find(slash == std::string::npos ? location : location.substr(slash + 1));
      }
      if (it == m_documents.end()) {
        return {};
      }
      document = it->second.get();
    }
    if (fragment.empty()) {
      return {document, document};
    }
    try {
      return {&document->at(json::json_pointer(fragment)), document};
    } catch (const json::exception&) {
      return {};
    }
  }

  void check(const json& schema, const json& instance, const json& document,
             const std::string& path, std::vector<std::string>& errors, int depth) const {
    if (depth > k_max_depth) {
      add_error(errors, path, "schema recursion too deep");
      return;
    }
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) {
        add_error(errors, path, "no value is allowed here");
      }
      return;
    }
    if (!schema.is_object()) {
      return;
    }
    // Draft-04: a $ref replaces the whole schema object; siblings are ignored.
    if (auto ref = schema.find("$ref"); ref != schema.end() && ref->is_string()) {
      auto target = resolve(ref->get<std::string>(), document);
      if (target.schema == nullptr) {
        add_error(errors, path, "unresolvable $ref " + ref->get<std::string>());
        return;
      }
      check(*target.schema, instance, *target.document, path, errors, depth + 1);
      return;
    }
    check_generic(schema, instance, document, path, errors, depth);
    if (instance.is_number()) {
      check_number(schema, instance, path, errors);
    }
    if (instance.is_string()) {
      check_string(schema, instance.get<std::string>(), path, errors);
    }
    if (instance.is_array()) {
      check_array(schema, instance, document, path, errors, depth);
    }
    if (instance.is_object()) {
      check_object(schema, instance, document, path, errors, depth);
    }
  }

  void check_generic(const json& schema, const json& instance, const json& document,
                     const std::string& path, std::vector<std::string>& errors, int depth) const {
    if (auto type = schema.find("type"); type != schema.end()) {
      bool ok = false;
      if (type->is_string()) {
        ok = has_type(instance, type->get<std::string>());
      } else if (type->is_array()) {
        for (const auto& option : *type) {
          ok = ok || (option.is_string() && has_type(instance, option.get<std::string>()));
        }
      }
      if (!ok) {
        add_error(errors, path, short_dump(instance) + " is not of type " + type->dump());
      }
    }
    if (auto values = schema.find("enum"); values != schema.end() && values->is_array()) {
      bool found = false;
      for (const auto& value : *values) {
        found = found || value == instance;
      }
      if (!found) {
        add_error(errors, path, short_dump(instance) + " is not one of " + values->dump());
      }
    }
    if (auto all = schema.find("allOf"); all != schema.end() && all->is_array()) {
      for (const auto& sub : *all) {
        check(sub, instance, document, path, errors, depth + 1);
      }
    }
    if (auto any = schema.find("anyOf"); any != schema.end() && any->is_array()) {
      bool matched = false;
      for (const auto& sub : *any) {
        std::vector<std::string> sub_errors;
        check(sub, instance, document, path, sub_errors, depth + 1);
        matched = matched || sub_errors.empty();
      }
      if (!matched) {
        add_error(errors, path, short_dump(instance) + " matches none of anyOf");
      }
    }
    if (auto one = schema.find("oneOf"); one != schema.end() && one->is_array()) {
      int matched = 0;
      for (const auto& sub : *one) {
        std::vector<std::string> sub_errors;
        check(sub, instance, document, path, sub_errors, depth + 1);
        matched += sub_errors.empty() ? 1 : 0;
      }
      if (matched != 1) {
        add_error(errors, path,
                  short_dump(instance) + " matches " + std::to_string(matched) +
                      " of oneOf, expected exactly 1");
      }
    }
    if (auto negated = schema.find("not"); negated != schema.end()) {
      std::vector<std::string> sub_errors;
      check(*negated, instance, document, path, sub_errors, depth + 1);
      if (sub_errors.empty()) {
        add_error(errors, path, short_dump(instance) + " matches a \"not\" schema");
      }
    }
  }

  static void check_number(const json& schema, const json& instance, const std::string& path,
                           std::vector<std::string>& errors) {
    if (auto minimum = schema.find("minimum"); minimum != schema.end() && minimum->is_number()) {
      bool exclusive = schema.value("exclusiveMinimum", false);
      int order = compare_numbers(instance, *minimum);
      if (order < 0 || (exclusive && order == 0)) {
        add_error(errors, path, instance.dump() + " is less than the minimum " + minimum->dump());
      }
    }
    if (auto maximum = schema.find("maximum"); maximum != schema.end() && maximum->is_number()) {
      bool exclusive = schema.value("exclusiveMaximum", false);
      int order = compare_numbers(instance, *maximum);
      if (order > 0 || (exclusive && order == 0)) {
        add_error(errors, path,
                  instance.dump() + " is greater than the maximum " + maximum->dump());
      }
    }
  }

  void check_string(const json& schema, const std::string& text, const std::string& path,
                    std::vector<std::string>& errors) const {
    if (auto min = schema.find("minLength"); min != schema.end() && min->is_number_integer() &&
                                             utf8_length(text) < min->get<std::size_t>()) {
      add_error(errors, path, "string shorter than " + min->dump());
    }
    if (auto max = schema.find("maxLength"); max != schema.end() && max->is_number_integer() &&
                                             utf8_length(text) > max->get<std::size_t>()) {
      add_error(errors, path, "string longer than " + max->dump());
    }
    if (auto pattern = schema.find("pattern"); pattern != schema.end() && pattern->is_string()) {
      if (const auto* regex = regex_for(pattern->get<std::string>(), errors, path)) {
        if (!std::regex_search(text, *regex)) {
          add_error(errors, path,
                    "\"" + text.substr(0, 60) + "\" does not match " + pattern->get<std::string>());
        }
      }
    }
    if (auto format = schema.find("format"); format != schema.end() && format->is_string()) {
      const auto& name = format->get_ref<const std::string&>();
      if ((name == "date-time" && !is_date_time(text)) || (name == "uri" && !is_uri(text))) {
        add_error(errors, path, "\"" + text.substr(0, 60) + "\" is not a valid " + name);
      }
    }
    if (auto media = schema.find("media"); media != schema.end() && media->is_object()) {
      if (media->value("binaryEncoding", "") == "base64" && !is_padded_base64(text)) {
        add_error(errors, path, "not standard padded base64");
      }
    }
  }

  void check_array(const json& schema, const json& instance, const json& document,
                   const std::string& path, std::vector<std::string>& errors, int depth) const {
    if (auto min = schema.find("minItems"); min != schema.end() && min->is_number_integer() &&
                                            instance.size() < min->get<std::size_t>()) {
      add_error(errors, path, "fewer than " + min->dump() + " items");
    }
    if (auto max = schema.find("maxItems"); max != schema.end() && max->is_number_integer() &&
                                            instance.size() > max->get<std::size_t>()) {
      add_error(errors, path, "more than " + max->dump() + " items");
    }
    if (schema.value("uniqueItems", false)) {
      for (std::size_t i = 0; i < instance.size(); ++i) {
        for (std::size_t j = i + 1; j < instance.size(); ++j) {
          if (instance[i] == instance[j]) {
            add_error(errors, path,
                      "items " + std::to_string(i) + " and " + std::to_string(j) + " are equal");
          }
        }
      }
    }
    auto items = schema.find("items");
    if (items == schema.end()) {
      return;
    }
    if (items->is_array()) {
      for (std::size_t i = 0; i < instance.size(); ++i) {
        auto item_path = path + "/" + std::to_string(i);
        if (i < items->size()) {
          check((*items)[i], instance[i], document, item_path, errors, depth + 1);
        } else if (auto extra = schema.find("additionalItems"); extra != schema.end()) {
          check(*extra, instance[i], document, item_path, errors, depth + 1);
        }
      }
      return;
    }
    for (std::size_t i = 0; i < instance.size(); ++i) {
      check(*items, instance[i], document, path + "/" + std::to_string(i), errors, depth + 1);
    }
  }

  void check_object(const json& schema, const json& instance, const json& document,
                    const std::string& path, std::vector<std::string>& errors, int depth) const {
    if (auto required = schema.find("required"); required != schema.end() && required->is_array()) {
      for (const auto& name : *required) {
        if (name.is_string() && !instance.contains(name.get<std::string>())) {
          add_error(errors, path, "required property \"" + name.get<std::string>() + "\" missing");
        }
      }
    }
    if (auto min = schema.find("minProperties"); min != schema.end() && min->is_number_integer() &&
                                                 instance.size() < min->get<std::size_t>()) {
      add_error(errors, path, "fewer than " + min->dump() + " properties");
    }
    if (auto max = schema.find("maxProperties"); max != schema.end() && max->is_number_integer() &&
                                                 instance.size() > max->get<std::size_t>()) {
      add_error(errors, path, "more than " + max->dump() + " properties");
    }
    auto properties = schema.find("properties");
    auto patterns = schema.find("patternProperties");
    auto additional = schema.find("additionalProperties");
    for (const auto& [key, value] : instance.items()) {
      auto member_path = path + "/" + key;
      bool covered = false;
      if (properties != schema.end() && properties->is_object()) {
        if (auto sub = properties->find(key); sub != properties->end()) {
          covered = true;
          check(*sub, value, document, member_path, errors, depth + 1);
        }
      }
      if (patterns != schema.end() && patterns->is_object()) {
        for (const auto& [pattern, sub] : patterns->items()) {
          const auto* regex = regex_for(pattern, errors, member_path);
          if (regex != nullptr && std::regex_search(key, *regex)) {
            covered = true;
            check(sub, value, document, member_path, errors, depth + 1);
          }
        }
      }
      if (!covered && additional != schema.end()) {
        if (additional->is_boolean() && !additional->get<bool>()) {
          add_error(errors, path, "additional property \"" + key + "\" is not allowed");
        } else if (additional->is_object()) {
          check(*additional, value, document, member_path, errors, depth + 1);
        }
      }
    }
  }
};

} // namespace minibuild::test
