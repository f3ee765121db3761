"""One-off: convert the original MTCNN weights (as shipped, MIT, in the facenet-pytorch
wheel) into realtime/weights/mtcnn.pt, a plain dict of tensors that realtime.live.detect loads.

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fp && (cd /tmp/fp && unzip -q *.whl)
    python tools/convert_mtcnn.py /tmp/fp/facenet_pytorch/data

facenet-pytorch flattens the last feature map in (W, H, C) order before the dense
layers (a leftover of the Caffe original, which ran on transposed images). We reorder
those dense weights' columns to PyTorch's (C, H, W) flatten order here, once, so the
detector's nets are plain Sequential-style models with a standard flatten. The conv
kernels already expect untransposed RGB images and are copied as they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "realtime" / "weights" / "mtcnn.pt"
#: dense layer fed by the flattened conv output -> (channels, height, width) of that output
DENSE_INPUTS = {"rnet.dense4.weight": (64, 3, 3), "onet.dense5.weight": (128, 3, 3)}


def convert(src: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for net in ("pnet", "rnet", "onet"):
        path = src / f"{net}.pt"
        if not path.is_file():
            sys.exit(f"error: {path} not found; pass the facenet_pytorch/data folder of the unzipped wheel")
        for k, v in torch.load(path, map_location="cpu", weights_only=True).items():
            out[f"{net}.{k}"] = v.float().contiguous()
    for key, (c, h, w) in DENSE_INPUTS.items():
        wt = out[key]
        out[key] = wt.view(wt.shape[0], w, h, c).permute(0, 3, 2, 1).reshape(wt.shape[0], -1).contiguous()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="facenet_pytorch/data folder holding pnet.pt, rnet.pt, onet.pt")
    ap.add_argument("-o", "--out", type=Path, default=OUT)
    args = ap.parse_args()
    state = convert(args.src)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"wrote {args.out} ({sum(v.numel() for v in state.values())} parameters)")


if __name__ == "__main__":
    main()
