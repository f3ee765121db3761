#!/usr/bin/env bash
# Here, before a device call: what tools/gpu_check.sh carries to the GPU machine (its
# Python is 3.12 with torch, numba, onnxruntime and OpenCV; it lacks moderngl and GL
# loaders). All three folders are listed in .git/info/exclude.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gl/' .git/info/exclude || printf '/.gl/\n/.whl/\n/.gpu-data/\n' >> .git/info/exclude
mkdir -p .gl .whl .gpu-data /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl moderngl glcontext
cp -r ../shared/data/media ../shared/data/bfm .gpu-data/
du -sh .gl .whl .gpu-data
