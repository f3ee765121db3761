"""The swap benchmark's contact sheet (realtime.eval.swap): rows of source | input |
output face crops, captioned, for a person to judge; and, for the worst pairs (of the
HD set, of the portraits on the 1280 x 720 clips, the AFLW pair with the worst
mottle), the input and the output cropped at full resolution (1:1, no scaling), where
blotches, a second nostril or a step at the jaw show as a viewer of the video would
see them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.eval.aflw2000 import crop_affine

TILE = 200  # a thumbnail's side
FULL = 400  # at most this much of a full-resolution crop's side


@dataclass
class Row:
    """A contact sheet row: source | input | output face crops, with a caption; with
    ``full``, the input and the output around the face at 1:1 instead."""

    source: np.ndarray
    input: np.ndarray
    output: np.ndarray
    landmarks: np.ndarray
    caption: str
    source_landmarks: np.ndarray | None = None
    full: bool = False


def _crop(image: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
    """A square around the face (1.6 x the landmark box), TILE px."""
    if landmarks is None:  # the middle square
        h, w = image.shape[:2]
        a = crop_affine(np.array([[0.0, w], [0.0, h]]), TILE, framing=min(h, w) / max(h, w))
    else:
        a = crop_affine(landmarks[:, :2].T, TILE, framing=1.6)
    return cv2.warpAffine(image, a, (TILE, TILE), flags=cv2.INTER_AREA, borderValue=(30, 30, 30))


def full_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face at 1:1: a square of the landmark box's side grown by a fifth (at most
    FULL px: the middle of a larger face), around the face's centre."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    side = int(min(1.2 * (hi - lo).max(), FULL))
    x0, y0 = np.round((lo + hi) / 2 - side / 2).astype(int)
    a = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    return cv2.warpAffine(image, a, (side, side), flags=cv2.INTER_NEAREST, borderValue=(30, 30, 30))


def _caption(text: str, width: int) -> np.ndarray:
    bar = np.full((22, width, 3), 20, np.uint8)
    wide = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
    scale = 0.45 * min(1.0, (width - 10) / max(wide, 1))  # smaller type, not a cut caption
    cv2.putText(bar, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA)
    return bar


def contact_sheet(rows: list[Row]) -> np.ndarray:
    """Rows of source | input | output (or, ``full`` rows, input | output at 1:1), each
    captioned; the sheet is as wide as its widest row."""
    out = []
    for r in rows:
        if r.full:
            tiles = [full_crop(r.input, r.landmarks), full_crop(r.output, r.landmarks)]
        else:
            tiles = [
                _crop(r.source, r.source_landmarks),
                _crop(r.input, r.landmarks),
                _crop(r.output, r.landmarks),
            ]
        strip = np.hstack(tiles)
        out.append(np.vstack([_caption(r.caption, strip.shape[1]), strip]))
    width = max([3 * TILE] + [o.shape[1] for o in out])
    head = np.full((22, width, 3), 50, np.uint8)
    for k, label in enumerate(("source", "input", "output")):
        cv2.putText(
            head, label, (k * TILE + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA
        )
    padded = [np.pad(o, ((0, 0), (0, width - o.shape[1]), (0, 0)), constant_values=30) for o in out]
    return np.vstack([head, *padded])


def clip_frame(target: object) -> tuple[str, str]:
    """A pair's target as (clip, frame): a clip's frame is named "clip.mp4#i"; a
    photo is (its name, "")."""
    clip, _, frame = str(target).partition("#")
    return clip, frame


def caption(label: str, r: dict) -> str:
    clip, frame = clip_frame(r["target"])
    target = Path(clip).stem + (f" #{frame}" if frame else "")
    return (
        f"{label}: {Path(r['source']).stem} on {target}: "
        f"src {r['to_source']:.2f} tgt {r['to_target']:.2f} "
        + (f"mottle {r['mottle']:.2f}" if r["mottle"] is not None else "grey target")
    )


def sheet_pairs(sheet: list[Row], rows: list[dict], config: str, best: int = 2, worst: int = 4) -> None:
    """Contact sheet rows of the cross-person swaps under ``config``: the ``best`` and the
    ``worst`` (by distance to the source minus distance to the target) of each set; and
    at full resolution, where blotches and steps show: the AFLW pair with the worst
    mottle, the HD set's worst by identity and by mottle, and of the portraits on the
    1280 x 720 clips each clip's worst by identity and the worst by mottle."""
    for kind in ("aflw", "portraits", "hd"):
        mine = sorted(
            (r for r in rows if r["config"] == config and r["set"] == kind and r.get("_out") is not None),
            key=lambda r: r["to_source"] - r["to_target"],
        )
        picked = [("best", r) for r in mine[:best]] + [
            ("worst", r) for r in mine[max(best, len(mine) - worst) :]
        ]
        for label, r in picked:
            src, s_lm, tgt, t_lm = r["_pictures"]
            sheet.append(Row(src, tgt, r["_out"], t_lm, caption(label, r), s_lm))
        where = "1:1"
        if kind == "portraits":  # at 1:1: the clips shown at 1280 x 720, the worst of each
            mine = [r for r in mine if r.get("size") == "1280x720"]
            clips = sorted({clip_frame(r["target"])[0] for r in mine})
            worst_of = [[r for r in mine if clip_frame(r["target"])[0] == c][-1] for c in clips]
            where = "1:1 at 1280x720"
        else:
            worst_of = mine[-1:] if kind == "hd" else []
        if not mine:
            continue
        full = [(f"worst identity, {where}", r) for r in worst_of]
        blotchy = max(mine, key=lambda r: r["mottle"] or 0.0)
        if all(blotchy is not r for r in worst_of):
            full.append((f"worst mottle, {where}", blotchy))
        for label, r in full:
            src, s_lm, tgt, t_lm = r["_pictures"]
            sheet.append(Row(src, tgt, r["_out"], t_lm, caption(label, r), s_lm, full=True))
