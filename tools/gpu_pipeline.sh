#!/usr/bin/env bash
# A short second device call: the GPU tests and the end-to-end pipeline runs alone
# (tools/gpu_check.sh does everything; use this when little device time is left).
set -u
source tools/gpu_env.sh
timeout 40 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py -k "processor or pascal" 2>&1 | tail -4 | tee "$OUT/tests.txt"
timeout ${PIPE_S:-120} python3 - <<'PY' 2>&1 | grep -v "^\[engines\]" | tee "$OUT/pipe.txt"
import json, os, sys
from realtime.bench.pipeline import bench_pipeline, markdown
runs = [(inp, w, h, n, m, "cuda-graph", paced) for inp, w, h, n, m, paced in (
    ("clip", 1280, 720, 1, "lite", False), ("clip", 1280, 720, 1, "lite", True), ("clip", 1920, 1080, 4, "lite", False),
)]
log = lambda m: print(f"[bench] {m}", flush=True)
p = bench_pipeline(300, log, runs=runs)
open(os.path.join(os.environ.get("OUT", "/tmp"), "pipe.json"), "w").write(json.dumps(p, indent=1, default=str))
print("\n".join(markdown(p)))
PY
