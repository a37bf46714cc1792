#!/usr/bin/env bash
# Installs everything minibuild's build and tests need on Debian 12 (as root), then builds.
# Safe to run again: apt-get skips what is installed, cmake rebuilds only what changed.
#   scripts/setup.sh            install packages and build into ./build
#   MINIBUILD_SKIP_APT=1 ...    only build (e.g. on a machine prepared by hand, or as non-root)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang-format
  # libraries (cmake/Dependencies.cmake has the minimum versions)
  libarchive-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libseccomp-dev
  zlib1g-dev libzstd-dev libisal-dev libcli11-dev libexpected-dev
  # tests: Catch2, and independent OCI tools that check what minibuild writes
  catch2 umoci skopeo busybox-static python3 uidmap mmdebstrap
  # tests against real registries (integration/registry_lib.sh): registry, TLS, htpasswd, tokens
  docker-registry apache2-utils openssl python3-cryptography curl
  # benchmarks (bench/): the peers minibuild's layer export is compared with
  pigz zstd
  # fuzzing (cmake -DMINIBUILD_FUZZ=ON with clang)
  clang libclang-rt-14-dev
)

if [ "${MINIBUILD_SKIP_APT:-0}" != 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: installing packages needs root (or set MINIBUILD_SKIP_APT=1)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"
echo "setup.sh: built build/src/minibuild"
