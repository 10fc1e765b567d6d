#!/usr/bin/env bash
# Installs the Debian 12 packages rcsim builds with. Idempotent and quiet when all are present;
# runs `apt-get update` first when something is missing (fresh machines have stale or no lists).
#   scripts/install_deps.sh           host build and tests
#   scripts/install_deps.sh --hip     also hipcc and the ROCm device libraries (hip-amd preset)
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config git python3 python3-numpy
          libgtest-dev libgmock-dev librapidcheck-dev libspdlog-dev libfmt-dev libcli11-dev
          nlohmann-json3-dev libxxhash-dev libbenchmark-dev python3-jsonschema
          pybind11-dev python3-dev python3-pytest python3-torch
          clang ccache)  # clang: the asan-ubsan and fuzz presets; ccache: the GPU presets' CCACHE=1
if [[ "${1:-}" == "--hip" ]]; then
  packages+=(hipcc libamdhip64-dev rocm-device-libs)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "rcsim: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
