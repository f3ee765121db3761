#!/usr/bin/env bash
# The GPU checks and figures of one device call (see docs/benchmarks.md, GPU section).
# Carry .gl (EGL/GL loader debs), .whl (moderngl + glcontext wheels for the GPU
# machine's Python) and .gpu-data (copies of ../shared/data/media and bfm); prepare
# them with tools/gpu_prepare.sh. Writes its logs and reports under $OUT.
set -u
source tools/gpu_env.sh
log() { echo "== $(date +%T) $*" | tee -a "$OUT/log.txt"; }

log "machine"
nvidia-smi -L 2>&1 | tee -a "$OUT/log.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))" 2>&1 | tee -a "$OUT/log.txt"
effect=tiger
if ! python3 -c "import moderngl; c = moderngl.create_context(standalone=True, backend='egl'); print('EGL:', c.info['GL_RENDERER'])" 2>&1 | tee -a "$OUT/log.txt"; then
    effect=none  # no GL here: the pipeline runs without drawing, and the report says so
    log "no EGL context: pipeline runs with --effect none"
fi

log "tests"
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -25 | tee -a "$OUT/log.txt"

log "bench gpu"
timeout ${GPU_S:-170} python3 -m realtime.bench --part gpu --out "$OUT/gpu" 2>&1 | grep -v "^\[engines\]" | tail -150 >> "$OUT/log.txt"

log "bench pipeline (effect $effect)"
timeout ${PIPE_S:-170} python3 -m realtime.bench --part pipeline --frames 300 --effect "$effect" --out "$OUT/pipe" 2>&1 \
    | grep -v "^\[engines\]" | tail -40 >> "$OUT/log.txt"
log "done"
tail -c 11000 "$OUT/log.txt"
