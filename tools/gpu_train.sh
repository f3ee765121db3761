#!/usr/bin/env bash
# Train the full and the lite PRNet side by side on one CUDA GPU, in the background.
#
#   tools/gpu_train.sh DATA MINUTES [more python -m realtime.train options]
#
# DATA holds train/ and bfm/ as ../shared/data does (on a borrowed GPU machine:
# unpacked from the parts that tools/pack_training_data.sh cut). Each run fits its
# learning-rate schedule into MINUTES (python -m realtime.train --minutes) and leaves
# checkpoints in ~/.cache/prnet-live/train/{full256,lite128}; logs go to /tmp/*.log.
# Data loading is split across the CPU cores; the position maps are made on the GPU.
set -euo pipefail
data=${1:?data folder}
minutes=${2:?minutes}
shift 2
workers=$(( $(nproc) / 2 - 1 ))
export PYTHONUNBUFFERED=1
setsid nohup python3 -m realtime.train --run full256 --size 16 --resolution 256 \
    --batch 64 --lr 4e-4 --epochs 60 --halve-every 10 --val-every 5 \
    --workers "$workers" --minutes "$minutes" --data "$data" "$@" >/tmp/full256.log 2>&1 &
setsid nohup python3 -m realtime.train --run lite128 --size 8 --resolution 128 \
    --batch 64 --lr 4e-4 --epochs 100 --halve-every 16 --val-every 10 \
    --workers "$workers" --minutes "$minutes" --data "$data" "$@" >/tmp/lite128.log 2>&1 &
echo "training in the background: tail -f /tmp/full256.log /tmp/lite128.log"
