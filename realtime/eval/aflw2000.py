"""AFLW2000-3D faces as the evaluations read them: each image with its 68 ground-truth
landmarks and yaw, and the crop the models were trained on (a square 1.44 x the
landmark box's longer side, centred on it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FRAMING = 1.44  # crop side / longer side of the 68-landmark box, as in training


@dataclass
class Sample:
    """image: (H, W, 3) BGR; pts: (3, 68) 0-based ground truth; yaw: degrees."""

    name: str
    image: np.ndarray
    pts: np.ndarray
    yaw: float


def load_aflw2000(folder: Path, limit: int | None = None) -> list[Sample]:
    from scipy.io import loadmat

    files = sorted(folder.glob("*.jpg"))[:limit]
    if not files:
        raise FileNotFoundError(f"no AFLW2000-3D images (*.jpg with .mat) in {folder}")
    out = []
    for f in files:
        mat = loadmat(f.with_suffix(".mat"))
        pts = mat["pt3d_68"].astype(np.float64) - np.array([[1.0], [1.0], [0.0]])
        yaw = float(np.degrees(mat["Pose_Para"][0, 1]))
        out.append(Sample(f.stem, cv2.imread(str(f)), pts, yaw))
    return out


def crop_affine(pts2d: np.ndarray, resolution: int, framing: float = FRAMING) -> np.ndarray:
    """(2, 3) frame -> crop affine for a (2, K) landmark set: a square ``framing`` x the
    box's longer side, centred on it (by default the training framing)."""
    lo, hi = pts2d.min(1), pts2d.max(1)
    centre = (lo + hi) / 2
    side = framing * float((hi - lo).max())
    s = resolution / side
    c = (resolution - 1) / 2
    return np.array([[s, 0, c - s * centre[0]], [0, s, c - s * centre[1]]])


def warp_crop(image: np.ndarray, to_crop: np.ndarray, resolution: int) -> np.ndarray:
    """Anti-aliased affine crop: blur first when shrinking, as a camera would."""
    scale = float(np.sqrt(abs(np.linalg.det(to_crop[:, :2]))))
    if scale < 0.8:
        image = cv2.GaussianBlur(image, (0, 0), 0.45 / scale)
    return cv2.warpAffine(
        image, to_crop, (resolution, resolution), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
