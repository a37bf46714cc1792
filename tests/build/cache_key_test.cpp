#include <minibuild/build/cache_key.hpp>

#include <catch2/catch.hpp>

using minibuild::build::CacheKey;

TEST_CASE("cache key: fields are typed and length-framed", "[build]") {
  CacheKey key("run");
  key.add("argv", "echo hi");
  CHECK(key.text() == "Tversion 1:1\nTkind 3:run\nTargv 7:echo hi\n");
  CHECK(key.digest().to_string().rfind("sha256:", 0) == 0);
}

TEST_CASE("cache key: no two field lists collide by moving bytes between fields", "[build]") {
  // Without framing, "ab"+"c" and "a"+"bc" would hash alike.
  CacheKey a("run");
  a.add("x", "ab").add("y", "c");
  CacheKey b("run");
  b.add("x", "a").add("y", "bc");
  CHECK(a.digest() != b.digest());

  // A value that looks like the next field's framing stays inside its own field.
  CacheKey c("run");
  c.add("x", "1\nTy 1:z");
  CacheKey d("run");
  d.add("x", "1").add("y", "z");
  CHECK(c.digest() != d.digest());

  // An empty field differs from an absent one; an empty list from a list with "".
  CacheKey e("run");
  e.add("x", "");
  CHECK(e.digest() != CacheKey("run").digest());
  CacheKey f("run");
  f.add_list("env", {});
  CacheKey g("run");
  g.add_list("env", {""});
  CHECK(f.digest() != g.digest());
}

TEST_CASE("cache key: order, kind and tags matter; equal input gives equal keys", "[build]") {
  CacheKey a("run");
  a.add("x", "1").add("y", "2");
  CacheKey b("run");
  b.add("y", "2").add("x", "1");
  CHECK(a.digest() != b.digest());
  CacheKey c("copy");
  c.add("x", "1").add("y", "2");
  CHECK(a.digest() != c.digest());
  CacheKey d("run");
  d.add("x", "1").add("y", "2");
  CHECK(a.digest() == d.digest());
  CacheKey lists("run");
  lists.add_list("env", {"A=1", "B=2"});
  CHECK(lists.text() == "Tversion 1:1\nTkind 3:run\nTenv 1:2\nTitem 3:A=1\nTitem 3:B=2\n");
}
