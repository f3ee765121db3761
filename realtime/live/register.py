"""Keep a still face's crop on the face's own pixels between reframes: image
registration of the frame's pixels under each crop against those the tracker framed it
on.

Why: the tracker holds a still face's crop where it is (``TrackerConfig.hold``), so
the network sees the face move by whatever sub-pixel amount the head or the camera
moved, and PRNet does not follow sub-pixel moves: on the peers benchmark's still face
(shifted by +-0.5 px a frame) its raw landmarks moved 0.51 px a frame beyond the
shifts, against MediaPipe's 0.35. Registered, the crop moves with the face, the network
sees nearly the same pixels each frame and the landmarks move with the face itself.

How: when the tracker (re)frames a track, the frame's pixels under its crop, grey at
``PATCH`` x ``PATCH`` px, become the track's reference. Each later frame's pixels under
the same crop are registered against it by a translation (OpenCV's ECC,
``cv2.findTransformECC``: about 0.16 ms a face with the patch, within 0.05 frame px of
the true shift on the still face), and ``FaceProcessor`` cuts the crop that much
further along. Against the fixed reference, errors do not add up from frame to frame;
the crop is cut once; and as it reads the frame itself (numpy, BGR), it works the same
whichever device the crops are cut on.

Only a face that stayed within ``max_shift`` of its reference (1.5 px of a 128 px
crop) and still looks like it (ECC's correlation at least ``min_correlation``) is
followed: a still head's tremor, not a talking head's bob. Following larger moves (up
to 5 % of the crop, the tracker's hold) steadied the network's input so far that on the
low-resolution webcam clips its mouth and lid readings lost most of their correlation
with MediaPipe's (kpa mouth r 0.45 -> 0.10-0.20); within 1.5 px they did not change.
Where it moved further, the current pixels become the reference, so a head that moved
and stopped is followed again from where it stopped. The landmarks are mapped back
through each crop's own affine, so registration only changes what the network sees,
never where its landmarks land.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Side (px) of the grey patch registered (a 64 px patch was no steadier, and its ECC
#: took 0.21 ms against 0.12).
PATCH = 48
#: ECC's stopping rule: at most 5 iterations, or a step under 0.01 px (more bought nothing).
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 5, 1e-2)
_WHOLE = np.ones((PATCH, PATCH), np.uint8)  # ECC's mask: the whole patch


@dataclass
class _Reference:
    """One track's reference: its (PATCH, PATCH) grey patch and the tracker's framing it
    was cut at (centre (2,) frame px, side frame px), so a reframe is noticed."""

    grey: np.ndarray
    center: np.ndarray
    side: float


class CropRegistration:
    """``__call__(image, centers, sides, track_ids) -> centres`` (N, 2) frame px to cut
    the crops at instead of the tracker's ``centers``, or None where none moves. One
    per followed scene: its references are per track id."""

    def __init__(self, min_correlation: float = 0.95, max_shift: float = 0.012):
        self.min_correlation = min_correlation  # ECC's correlation to trust a shift
        self.max_shift = max_shift  # largest shift followed, x the crop side
        self._refs: dict[int, _Reference] = {}

    def reset(self) -> None:
        self._refs.clear()

    def __call__(
        self, image: np.ndarray, centers: np.ndarray, sides: np.ndarray, track_ids: list[int]
    ) -> np.ndarray | None:
        """``image``: the (H, W, 3) uint8 BGR frame the crops are cut from."""
        out = np.asarray(centers, np.float64).copy()
        moved = False
        for i, tid in enumerate(track_ids):
            side = float(sides[i])
            grey = _patch(image, out[i], side)
            if grey is None:  # the crop runs off the frame: cut as it is
                self._refs.pop(tid, None)
                continue
            ref = self._refs.get(tid)
            if ref is None or ref.side != side or not np.array_equal(ref.center, out[i]):
                self._refs[tid] = _Reference(grey, out[i].copy(), side)  # (re)framed
                continue
            shift = self._shift(ref.grey, grey)
            if shift is None or np.abs(shift).max() > self.max_shift * PATCH:
                ref.grey = grey  # moved on, or changed: follow from here
                continue
            out[i] += shift * side / PATCH
            moved = True
        for tid in set(self._refs) - set(track_ids):
            del self._refs[tid]  # faces no longer followed
        return out if moved else None

    def _shift(self, ref: np.ndarray, grey: np.ndarray) -> np.ndarray | None:
        """(2,) patch px by which ``grey``'s content lies further along than ``ref``'s,
        or None where ECC fails or the two do not look alike."""
        try:
            cc, warp = cv2.findTransformECC(
                ref, grey, np.eye(2, 3, dtype=np.float32), cv2.MOTION_TRANSLATION, _CRITERIA, _WHOLE, 3
            )
        except cv2.error:  # no convergence: a flat patch, or too far
            return None
        shift = warp[:, 2].astype(np.float64)
        return shift if cc >= self.min_correlation and np.isfinite(shift).all() else None


def _patch(image: np.ndarray, center: np.ndarray, side: float) -> np.ndarray | None:
    """(PATCH, PATCH) float32 grey of the frame's whole pixels under the crop (the same
    pixels while the tracker holds the crop), or None where they leave the frame."""
    n = round(side)
    x0, y0 = (np.round(center - side / 2)).astype(int)
    h, w = image.shape[:2]
    if x0 < 0 or y0 < 0 or x0 + n > w or y0 + n > h or n < PATCH // 2:
        return None
    grey = cv2.cvtColor(image[y0 : y0 + n, x0 : x0 + n], cv2.COLOR_BGR2GRAY)  # first: 2x quicker
    return cv2.resize(grey, (PATCH, PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)
