#!/usr/bin/env bash
# Run here, on Debian 12: unpacks what scripts/gpu_python_tests.sh needs on a machine that has
# none of Debian's build packages (the GPU machine: Ubuntu 24.04, CUDA, PyTorch, no network) into
# .gpu_deps/ (git-ignored), so the device run can carry it:
#   .gpu_deps/root/usr/include/{pybind11,fmt,spdlog}   headers, from the .debs via dpkg -x
#   .gpu_deps/root/usr/lib/python3/dist-packages/       pytest and its pure-Python dependencies,
#                                                       used only where `import pytest` fails
#   .gpu_deps/lib/                                      libfmt.so.9, libspdlog.so.1.10
# pybind11, fmt's and spdlog's headers are all the module needs to compile; the two shared
# libraries are Debian's builds (glibc-backward-compatible, so they load on Ubuntu 24.04).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.gpu_deps
rm -rf "$dest"
mkdir -p "$dest/debs" "$dest/root" "$dest/lib"
(cd "$dest/debs" &&
 apt-get download -qq pybind11-dev libfmt-dev libspdlog-dev python3-pytest python3-pluggy \
   python3-iniconfig python3-packaging python3-attr python3-py 2>&1 | grep -v "unsandboxed" || true)
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done
rm -rf "$dest/debs" "$dest/root/usr/share"
cp -a /usr/lib/x86_64-linux-gnu/libfmt.so.9* /usr/lib/x86_64-linux-gnu/libspdlog.so.1.10* \
  "$dest/lib/"
du -sh "$dest"
