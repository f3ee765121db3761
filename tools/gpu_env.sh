# Sourced by tools/gpu_check.sh and tools/gpu_pipeline.sh on the lent GPU machine: the
# carried GL loaders and wheels unpacked, the carried data and a private cache in use.
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PRNET_LIVE_SHARED=$PWD/.gpu-data PRNET_LIVE_CACHE=/tmp/prnet-cache
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
export PYTHONPATH=/tmp/site:$PWD
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -f "$vendor" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
