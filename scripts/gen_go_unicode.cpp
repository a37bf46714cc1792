// Generates the tables in src/dockerfile/go_unicode.hpp from ICU (libicu-dev):
//   g++ -std=c++20 scripts/gen_go_unicode.cpp $(pkg-config --cflags --libs icu-uc) -o /tmp/gen &&
//   /tmp/gen
// Not part of the build: run it when Go moves to a newer Unicode version.
// Prints Go-unicode property tables (non-ASCII only) from ICU's Unicode data.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <unicode/uchar.h>
#include <unicode/uversion.h>
#include <vector>

struct R {
  int32_t lo, hi;
};
struct Run {
  int32_t lo, hi, stride, delta;
};

static bool cat_in(UChar32 c, uint32_t mask) {
  return (U_GET_GC_MASK(c) & mask) != 0;
}

static std::vector<R> ranges(const std::function<bool(UChar32)>& pred) {
  std::vector<R> out;
  for (UChar32 c = 0x80; c <= 0x10FFFF; ++c) {
    if (!pred(c))
      continue;
    if (!out.empty() && out.back().hi == c - 1)
      out.back().hi = c;
    else
      out.push_back({c, c});
  }
  return out;
}

static void print_ranges(const char* name, const std::vector<R>& v) {
  long cps = 0;
  for (auto& r : v)
    cps += r.hi - r.lo + 1;
  std::printf("// %zu ranges, %ld code points\ninline constexpr CodePointRange %s[] = {\n",
              v.size(), cps, name);
  for (size_t i = 0; i < v.size(); ++i) {
    if (i % 4 == 0)
      std::printf("    ");
    std::printf("{0x%04X, 0x%04X},", v[i].lo, v[i].hi);
    std::printf((i % 4 == 3 || i + 1 == v.size()) ? "\n" : " ");
  }
  std::printf("};\n\n");
}

int main() {
  UVersionInfo uv;
  u_getUnicodeVersion(uv);
  std::printf("// Unicode %d.%d.%d (ICU %s)\n", uv[0], uv[1], uv[2], U_ICU_VERSION);
  const uint32_t print_mask = U_GC_L_MASK | U_GC_M_MASK | U_GC_N_MASK | U_GC_P_MASK | U_GC_S_MASK;
  print_ranges("k_print_ranges", ranges([&](UChar32 c) { return cat_in(c, print_mask); }));
  print_ranges("k_letter_ranges", ranges([&](UChar32 c) { return cat_in(c, U_GC_L_MASK); }));
  print_ranges("k_digit_ranges",
               ranges([&](UChar32 c) { return u_charType(c) == U_DECIMAL_DIGIT_NUMBER; }));
  std::vector<Run> runs;
  long mapped = 0;
  for (UChar32 c = 0x80; c <= 0x10FFFF; ++c) {
    const UChar32 l = u_tolower(c);
    if (l == c)
      continue;
    ++mapped;
    const int32_t d = l - c;
    if (!runs.empty() && runs.back().delta == d) {
      Run& r = runs.back();
      if (r.lo == r.hi && (c - r.hi == 1 || c - r.hi == 2)) {
        r.stride = c - r.hi;
        r.hi = c;
        continue;
      }
      if (r.lo != r.hi && c - r.hi == r.stride) {
        r.hi = c;
        continue;
      }
    }
    runs.push_back({c, c, 1, d});
  }
  std::printf("// %zu runs, %ld code points\ninline constexpr LowerRun k_lower_runs[] = {\n",
              runs.size(), mapped);
  for (size_t i = 0; i < runs.size(); ++i) {
    if (i % 3 == 0)
      std::printf("    ");
    char buf[64];
    std::snprintf(buf, sizeof buf, "{0x%04X, 0x%04X, %d, %d},", runs[i].lo, runs[i].hi,
                  runs[i].stride, runs[i].delta);
    std::printf("%-30s", buf);
    std::printf((i % 3 == 2 || i + 1 == runs.size()) ? "\n" : "");
  }
  std::printf("};\n");
}
