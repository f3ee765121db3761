"""Frames of a video side by side in one picture, for the README's pictures.

python tools/contact_sheet.py out/swap.mp4 docs/swap_carphone.jpg --frames 8 --cols 4 --scale 1.5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from realtime.live.capture import CaptureError, VideoSource


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames", type=int, default=8, help="evenly spaced frames to show")
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args(argv)
    try:
        with VideoSource(args.video) as src:
            frames = src.read_all()
    except CaptureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    picks = np.linspace(0, len(frames) - 1, args.frames + 2)[1:-1].round().astype(int)
    tiles = [cv2.resize(frames[i], None, fx=args.scale, fy=args.scale) for i in picks]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % args.cols)
    rows = [np.hstack(tiles[i : i + args.cols]) for i in range(0, len(tiles), args.cols)]
    cv2.imwrite(str(args.out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}: frames {', '.join(map(str, picks))} of {len(frames)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
