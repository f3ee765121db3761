#!/usr/bin/env bash
# Cut the training data (crops, 3DMM fits, AFLW's hand marks, face model: 130 MB) into
# parts that fit a device call's 64 MiB beside the 14 MB working tree, one part a call.
#
#   tools/pack_training_data.sh [DATA]   ->  .pack0/ .pack1/ .pack2/ (git-ignored)
#
# On the far side: cat the parts in order | tar x -C DEST.
set -euo pipefail
data=${1:-../shared/data}
grep -qx '/.pack\*/' .git/info/exclude 2>/dev/null || echo '/.pack*/' >>.git/info/exclude
tmp=$(mktemp -d)
tar cf - -C "$data" train/aflw_crops_120.zip train/aflw_teacher_params.npz train/aflw_crops_labels21.npz \
    bfm/bfm_noneck_uv.npz | split -b 44M -d - "$tmp/part."
for f in "$tmp"/part.*; do
    n=${f##*.}; n=$((10#$n))
    rm -rf ".pack$n"; mkdir -p ".pack$n"; mv "$f" ".pack$n/"
done
rmdir "$tmp"
ls -l .pack*/
