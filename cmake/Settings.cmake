# Compiler settings every minibuild target uses, as two INTERFACE targets.

add_library(minibuild_settings INTERFACE)
target_compile_features(minibuild_settings INTERFACE cxx_std_20)
target_include_directories(minibuild_settings INTERFACE
  "${PROJECT_SOURCE_DIR}/include"
  "${PROJECT_BINARY_DIR}/generated")
target_compile_definitions(minibuild_settings INTERFACE
  $<$<CONFIG:Debug>:_GLIBCXX_ASSERTIONS>
  _FILE_OFFSET_BITS=64)

add_library(minibuild_warnings INTERFACE)
target_compile_options(minibuild_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
  -Wcast-align -Wformat=2 -Wimplicit-fallthrough
  $<$<BOOL:${MINIBUILD_WERROR}>:-Werror>
  # GCC 12 at -O3 reports false -Wrestrict overlaps in std::string concatenation
  # (gcc.gnu.org/bugzilla/show_bug.cgi?id=105651); Release builds would fail on correct code.
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)

if(MINIBUILD_SANITIZE)
  string(REPLACE ";" "," minibuild_sanitizers "${MINIBUILD_SANITIZE}")
  target_compile_options(minibuild_settings INTERFACE
    -fsanitize=${minibuild_sanitizers} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(minibuild_settings INTERFACE -fsanitize=${minibuild_sanitizers})
endif()

if(MINIBUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MINIBUILD_FUZZ needs clang: configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Instrument the library for coverage; only fuzz targets link the libFuzzer main.
  target_compile_options(minibuild_settings INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                        -fno-sanitize-recover=all)
  target_link_options(minibuild_settings INTERFACE -fsanitize=address,undefined)
endif()
