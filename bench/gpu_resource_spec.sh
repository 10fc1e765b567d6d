#!/usr/bin/env bash
# Prints a CTest resource specification with one "gpus" slot per device that nvidia-smi (or
# rocm-smi) lists, so `ctest -L gpu -j N --resource-spec-file <(bench/gpu_resource_spec.sh)` runs one
# gpu test per GPU. A test sees its GPU index in CTEST_RESOURCE_GROUP_0_GPUS.
set -eu
if command -v nvidia-smi >/dev/null 2>&1; then
  n=$(nvidia-smi -L | grep -c '^GPU ')
elif command -v rocm-smi >/dev/null 2>&1; then
  n=$(rocm-smi --showid | grep -c 'GPU\[')
else
  n=0
fi
printf '{"version": {"major": 1, "minor": 0}, "local": [{"gpus": ['
for ((i = 0; i < n; i++)); do
  [ "$i" -gt 0 ] && printf ', '
  printf '{"id": "%d", "slots": 1}' "$i"
done
printf ']}]}\n'
