#!/usr/bin/env bash
# The full model's training in one GPU session (issue 21; docs/training_on_a_gpu.md):
# the last of three device calls, after two that left .pack0 and .pack1 in /tmp/parts.
#
#   tools/gpu_full.sh MINUTES [INIT_BUNDLE]
#
# Unpacks the data, trains the full PRNet (size 16, 256 px) for MINUTES with the recipe
# that helped the lite model (mirrored samples, labels moved to AFLW's hand marks),
# from INIT_BUNDLE (a carried earlier export) when given, and leaves in $OUT the
# exported bundle in 15 MB parts (a returned file is at most 16 MiB), the curve and the
# validation history. Here: cat "$OUT"/full256.pt.part.* > full256.pt.
set -euo pipefail
minutes=${1:?minutes}
init=${2:-}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" /tmp/data
cat /tmp/parts/* .pack2/* | tar x -C /tmp/data
export PYTHONUNBUFFERED=1 PRNET_LIVE_CACHE=/tmp/prnet-cache
args=(--run full256 --size 16 --resolution 256 --batch 64 --epochs 60 --halve-every 10
      --val-every 5 --workers $(( $(nproc) - 2 )) --minutes "$minutes" --max-minutes "$minutes"
      --data /tmp/data --flip 0.5 --human-refit)
if [ -n "$init" ]; then args+=(--init "$init" --lr 2e-4); else args+=(--lr 4e-4); fi
python3 -m realtime.train "${args[@]}" 2>&1 | tee "$OUT/train.log" | grep -v "^epoch" || true
run=/tmp/prnet-cache/train/full256
best=$run/best.pt
[ -f "$best" ] || best=$run/last.pt
python3 -c "from pathlib import Path; from realtime.train.checkpoint import export_bundle; export_bundle(Path('$best'), Path('/tmp/full256.pt'))"
split -b 15M /tmp/full256.pt "$OUT/full256.pt.part."
cp "$run/history.json" "$run/loss_curve.png" "$OUT/" 2>/dev/null || true
tail -5 "$OUT/train.log"
ls -l "$OUT"
