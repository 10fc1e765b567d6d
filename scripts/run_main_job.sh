#!/usr/bin/env bash
# The main job of `make run`. Until the simulator exists this runs the best demonstration so far.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "rcsim: main job placeholder: the simulation campaign is not built yet"
ctest --test-dir build -L unit --output-on-failure
