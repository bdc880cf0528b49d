#!/usr/bin/env bash
# Wheels the GPU machine lacks (it has Python 3.12 and torch, but no internet): run here,
# then carry .whl/ with the device tool (`carry: [".whl"]`). .whl/ is git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    -d .whl soundfile soxr cffi pycparser safetensors tqdm psutil
ls .whl
