// The test-only JSON Schema validator (support/json_schema.hpp) checks itself here on small
// schemas, so the conformance suite that relies on it stands on tested ground.
#include "support/json_schema.hpp"

#include <catch2/catch.hpp>

using minibuild::test::JsonSchemaSet;
using nlohmann::json;

namespace {

std::vector<std::string> validate(const json& schema, const json& instance) {
  JsonSchemaSet set;
  set.add("root.json", schema);
  return set.validate(instance, "root.json");
}

bool valid(const json& schema, const char* instance) {
  return validate(schema, json::parse(instance)).empty();
}

} // namespace

TEST_CASE("json schema: type, enum and numbers", "[json-schema]") {
  CHECK(valid(json{{"type", "integer"}}, "3"));
  CHECK(valid(json{{"type", "integer"}}, "3.0"));
  CHECK_FALSE(valid(json{{"type", "integer"}}, "3.5"));
  CHECK_FALSE(valid(json{{"type", "integer"}}, "\"3\""));
  CHECK(valid(json{{"type", json::array({"string", "null"})}}, "null"));
  CHECK_FALSE(valid(json{{"type", "object"}}, "[]"));
  CHECK(valid(json{{"enum", json::array({"layers"})}}, "\"layers\""));
  CHECK_FALSE(valid(json{{"enum", json::array({"layers"})}}, "\"tree\""));
  auto size = json::parse(R"({"type":"integer","minimum":0,"maximum":9223372036854776000})");
  CHECK(valid(size, "0"));
  CHECK(valid(size, "9223372036854775807"));
  CHECK_FALSE(valid(size, "-1"));
  CHECK_FALSE(valid(json::parse(R"({"minimum":2,"exclusiveMinimum":true})"), "2"));
  CHECK(valid(json::parse(R"({"minimum":-9223372036854776000})"), "-9223372036854775808"));
}

TEST_CASE("json schema: objects, arrays and combinators", "[json-schema]") {
  auto object = json::parse(R"({"type":"object","required":["a"],
    "properties":{"a":{"type":"string"}},
    "patternProperties":{"^x-":{"type":"integer"}},
    "additionalProperties":false})");
  CHECK(valid(object, R"({"a":"1","x-b":2})"));
  auto missing = validate(object, json::parse(R"({"x-b":2})"));
  REQUIRE(missing.size() == 1);
  CHECK(missing[0] == "/: required property \"a\" missing");
  CHECK_FALSE(valid(object, R"({"a":"1","x-b":"2"})"));
  CHECK_FALSE(valid(object, R"({"a":"1","c":2})"));

  auto array = json::parse(R"({"type":"array","minItems":1,"items":{"type":"string"}})");
  CHECK(valid(array, R"(["a"])"));
  CHECK_FALSE(valid(array, "[]"));
  auto errors = validate(array, json::parse(R"(["a",1])"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("/1: 1 is not of type", 0) == 0);

  auto one_of = json::parse(R"({"oneOf":[{"type":"array"},{"type":"null"}]})");
  CHECK(valid(one_of, "null"));
  CHECK_FALSE(valid(one_of, "{}"));
  CHECK_FALSE(valid(json::parse(R"({"oneOf":[{"type":"number"},{"type":"integer"}]})"), "1"));
  CHECK(valid(json::parse(R"({"anyOf":[{"type":"number"},{"type":"integer"}]})"), "1"));
  CHECK_FALSE(valid(json::parse(R"({"allOf":[{"type":"number"},{"minimum":5}]})"), "1"));
  CHECK_FALSE(valid(json::parse(R"({"not":{"type":"null"}})"), "null"));
}

TEST_CASE("json schema: $ref to fragments and to other documents", "[json-schema]") {
  JsonSchemaSet set;
  set.add("defs.json", json::parse(R"({"definitions":{
      "small":{"type":"integer","maximum":9},
      "pointer":{"oneOf":[{"$ref":"#/definitions/small"},{"type":"null"}]}}})"),
          {"https://example.com/schema/defs.json"});
  set.add("root.json", json::parse(R"({"properties":{
      "a":{"$ref":"defs.json#/definitions/pointer"},
      "b":{"$ref":"https://example.com/schema/defs.json#/definitions/small"},
      "c":{"$ref":"https://elsewhere.example/defs.json#/definitions/small"},
      "d":{"$ref":"#/properties/b"},
      "e":{"$ref":"nowhere.json"}}})"));
  CHECK(set.validate(json::parse(R"({"a":null,"b":1,"c":2,"d":3})"), "root.json").empty());
  CHECK_FALSE(set.validate(json::parse(R"({"a":10})"), "root.json").empty());
  CHECK_FALSE(set.validate(json::parse(R"({"c":10})"), "root.json").empty());
  CHECK_FALSE(set.validate(json::parse(R"({"d":"x"})"), "root.json").empty());
  auto unresolved = set.validate(json::parse(R"({"e":1})"), "root.json");
  REQUIRE(unresolved.size() == 1);
  CHECK(unresolved[0] == "/e: unresolvable $ref nowhere.json");
  CHECK(set.validate(json::object(), "missing.json").size() == 1);
}

TEST_CASE("json schema: pattern, format and base64", "[json-schema]") {
  auto media_type = json::parse(
      R"({"type":"string","pattern":"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"})");
  CHECK(valid(media_type, R"("application/vnd.oci.image.manifest.v1+json")"));
  CHECK_FALSE(valid(media_type, R"("foo/.bar")"));
  CHECK_FALSE(valid(media_type, R"("invalid")"));
  CHECK(valid(json::parse(R"({"pattern":"b"})"), R"("abc")")); // unanchored

  CHECK(JsonSchemaSet::is_date_time("2015-10-31T22:22:56.015925234Z"));
  CHECK(JsonSchemaSet::is_date_time("2016-02-29T00:00:00+01:00"));
  CHECK_FALSE(JsonSchemaSet::is_date_time("2015-02-29T00:00:00Z"));
  CHECK_FALSE(JsonSchemaSet::is_date_time("2015-10-31"));
  CHECK(JsonSchemaSet::is_uri("https://example.com/foo?a=b#c"));
  CHECK(JsonSchemaSet::is_uri("urn:isbn:0451450523"));
  CHECK_FALSE(JsonSchemaSet::is_uri("value"));
  CHECK_FALSE(JsonSchemaSet::is_uri("https://example.com/a b"));
  CHECK_FALSE(JsonSchemaSet::is_uri("https://example.com/%zz"));
  CHECK(JsonSchemaSet::is_padded_base64("e30="));
  CHECK(JsonSchemaSet::is_padded_base64(""));
  CHECK_FALSE(JsonSchemaSet::is_padded_base64("e30"));
  auto data = json::parse(R"({"type":"string","media":{"binaryEncoding":"base64"}})");
  CHECK(valid(data, R"("aGk=")"));
  CHECK_FALSE(valid(data, R"("aGk")"));
  CHECK_FALSE(valid(json::parse(R"({"format":"date-time"})"), R"("yesterday")"));
  CHECK(valid(json::parse(R"({"format":"email"})"), R"("not asserted")"));
}
