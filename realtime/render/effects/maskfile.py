"""``mask:PATH``: a user's mask, a PNG in PRNet's 256x256 UV layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realtime.core.uv import UVLayout
from realtime.render.effects.base import EffectError, LitEffect, register
from realtime.render.effects.uvdraw import TEX


def load_mask(path: str | Path, size: int = TEX) -> np.ndarray:
    """A user mask PNG in PRNet's UV layout (any square size), as (size, size, 4) BGRA."""
    path = Path(path)
    if not path.is_file():
        raise EffectError(f"mask {path} not found: give a PNG in PRNet's 256x256 UV layout")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise EffectError(f"mask {path} is not a readable image: give a PNG in PRNet's 256x256 UV layout")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    h, w = img.shape[:2]
    if h != w:
        raise EffectError(f"mask {path} is {w}x{h}: a UV mask must be square (PRNet's layout is 256x256)")
    if h != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if h > size else cv2.INTER_LINEAR)
    return np.ascontiguousarray(img)


@register
class MaskFile(LitEffect):
    name = "mask"
    takes_argument = True
    order = 50

    def __init__(self, layout: UVLayout, argument: str = ""):
        super().__init__(layout, argument)
        self.texture = load_mask(argument)
