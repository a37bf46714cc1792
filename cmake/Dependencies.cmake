# Every third-party dependency, with the minimum version minibuild is tested with (Debian 12).
# All come from Debian packages: see scripts/setup.sh.

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(tl-expected 1.0 REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(CURL 7.88 REQUIRED)
find_package(LibArchive 3.6 REQUIRED)
find_package(ZLIB 1.2.13 REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd>=1.5)
pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal>=2.30)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp>=2.5)
if(MINIBUILD_TESTS)
  find_package(Catch2 2.13 REQUIRED)
endif()
