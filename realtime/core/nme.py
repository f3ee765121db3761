"""The 68-point landmark error, NME, as the AFLW2000-3D protocol defines it: one
definition for training's validation, the evaluation and the peers' benchmark, so the
figures they print are the same measure."""

from __future__ import annotations

import numpy as np


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(..., 68) each landmark's 2D error over sqrt(w * h) of the true landmarks' 2D
    box, from (..., 3 or 2, 68) landmarks: a group's NME is its points' mean (the mouth's
    20, the eyes' 12)."""
    lo, hi = gt[..., :2, :].min(-1), gt[..., :2, :].max(-1)
    norm = np.sqrt(np.prod(hi - lo, axis=-1))
    return np.sqrt(((pred[..., :2, :] - gt[..., :2, :]) ** 2).sum(-2)) / norm[..., None]


def landmark_nme(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(2D, 3D) NME of (..., 3, 68) landmarks: the mean point error over sqrt(w * h) of
    the true landmarks' 2D box, each of shape (...). The 3D error aligns depth by its
    mean first, since the ground truth's z origin is arbitrary."""
    lo, hi = gt[..., :2, :].min(-1), gt[..., :2, :].max(-1)
    norm = np.sqrt(np.prod(hi - lo, axis=-1))
    d2 = ((pred[..., :2, :] - gt[..., :2, :]) ** 2).sum(-2)
    dz = (pred[..., 2, :] - pred[..., 2:, :].mean(-1)) - (gt[..., 2, :] - gt[..., 2:, :].mean(-1))
    return np.sqrt(d2).mean(-1) / norm, np.sqrt(d2 + dz**2).mean(-1) / norm
