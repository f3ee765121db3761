"""The 68-point landmark scheme (iBUG 300-W, dlib's order): its groups, and the
expression measures read off it.

Every measure of expression is a distance between two landmarks divided by the
distance between the eye centres, so it does not change with the face's size in the
frame, and the same reader serves our landmarks, a peer's (MediaPipe's mapped to the
68 scheme) and the labels we train on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JAW = list(range(0, 17))
BROW_L, BROW_R = list(range(17, 22)), list(range(22, 27))
NOSE_BRIDGE, NOSE_BASE = list(range(27, 31)), list(range(31, 36))
EYE_L, EYE_R = list(range(36, 42)), list(range(42, 48))
LIPS, MOUTH_IN = list(range(48, 60)), list(range(60, 68))

#: Upper-to-lower pairs whose distance is the mouth's opening (inner lips: centre, then
#: the two points beside it) and the lids' (two pairs per eye).
MOUTH_PAIRS = ((62, 66), (61, 67), (63, 65))
LID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))
#: The pairs a network's expression is trained on (``train``'s --expression): the lids,
#: the inner and outer lips' openings and the mouth's width.
EXPRESSION_PAIRS = (*MOUTH_PAIRS, (51, 57), (50, 58), (52, 56), (48, 54), (60, 64), *LID_PAIRS)


@dataclass(frozen=True)
class Expression:
    """Expression measures of one or more faces, each a distance over the distance
    between the eye centres (unitless; shape (...,) like the landmarks' batch shape).

    mouth: inner-lip opening, centre points 62-66.
    eyes: lid opening, upper to lower lid, the mean of both eyes' two pairs.
    width: mouth width, corner to corner (48-54).
    """

    mouth: np.ndarray
    eyes: np.ndarray
    width: np.ndarray

    @classmethod
    def from_landmarks(cls, lm: np.ndarray) -> Expression:
        """``lm`` (..., 68, 2 or 3): only x and y count."""
        p = np.asarray(lm, np.float64)[..., :2]
        iod = eye_distance(p)
        return cls(_dist(p, 62, 66) / iod, eye_openings(p).mean(-1), _dist(p, 48, 54) / iod)


def _dist(p: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(p[..., a, :] - p[..., b, :], axis=-1)


def eye_distance(lm: np.ndarray) -> np.ndarray:
    """(...,) the distance between the eye centres (the means of 36-41 and 42-47) of
    landmarks (..., 68, 2 or 3), in their units; at least 1e-6."""
    p = np.asarray(lm, np.float64)[..., :2]
    return np.maximum(np.linalg.norm(p[..., EYE_L, :].mean(-2) - p[..., EYE_R, :].mean(-2), axis=-1), 1e-6)


def eye_openings(lm: np.ndarray) -> np.ndarray:
    """(..., 2) each eye's lid opening (36-41's, then 42-47's): the mean of its two
    ``LID_PAIRS`` distances over ``eye_distance``; what a lid head predicts
    (realtime.core.model.LID_OUTPUTS)."""
    p = np.asarray(lm, np.float64)[..., :2]
    pairs = np.stack([_dist(p, a, b) for a, b in LID_PAIRS], -1)  # (..., 4): two per eye
    return pairs.reshape(*pairs.shape[:-1], 2, 2).mean(-1) / eye_distance(p)[..., None]
