"""Image helpers every floor needs: capture sizes a folder of mixed images to one
frame size, outputs size frames to a file's or a virtual camera's size, offline code
sizes clips to a benchmark's frame."""

from __future__ import annotations

import cv2
import numpy as np


def letterbox(image: np.ndarray, size: tuple[int, int], fill: int = 0) -> np.ndarray:
    """Fit ``image`` inside (width, height) keeping its aspect, padding with ``fill``, so
    a folder of mixed sizes still makes one video of one size (and a small clip fills a
    benchmark's 720p frame: enlarged with cubic, shrunk with area averaging)."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    s = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
    out = np.full((h, w, 3), fill, np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    inter = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    out[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=inter)
    return out
