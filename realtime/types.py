"""The data that flows between stages. Every stage takes and returns these, so any
stage can be swapped (another detector, another filter) without touching the rest.

Conventions everywhere: images are uint8 BGR (OpenCV's order) of shape (H, W, 3);
coordinates are pixels with the centre of the top-left pixel at (0, 0), x right,
y down; z is in the same pixel units, larger is nearer the camera; times are
``time.perf_counter()`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np


class UserError(Exception):
    """Bad input, flags or environment: the message is one line saying what went wrong
    and how to fix it, so the CLI prints it instead of a traceback."""


@dataclass
class Frame:
    """One captured image and its bookkeeping.

    image: (H, W, 3) uint8 BGR.
    seq: capture sequence number, from 0; gaps mean frames were dropped.
    t_capture: when the grabber got it (perf_counter seconds).
    spans: stage name -> (start, end) perf_counter seconds, filled as it travels.
    """

    image: np.ndarray
    seq: int
    t_capture: float
    source: str = ""
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]


@dataclass
class Detections:
    """Faces found by a detector in one frame, best first.

    boxes: (N, 4) float32 x1, y1, x2, y2 in frame pixels.
    scores: (N,) float32 confidence in [0, 1].
    landmarks: (N, 5, 2) float32 eyes, nose, mouth corners in frame pixels
        (MTCNN's five points), or None when the detector gives none.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


@dataclass
class FaceTrack:
    """One face followed across frames.

    track_id: stable id while the face is followed.
    center: (2,) float32 crop centre in frame pixels.
    size: crop side in frame pixels (the square that becomes the R x R input).
    landmarks: (68, 2) float32 latest landmarks in frame pixels, None until the
        first reconstruction.
    age: frames since the track started; misses: consecutive frames it failed.
    """

    track_id: int
    center: np.ndarray
    size: float
    landmarks: np.ndarray | None = None
    age: int = 0
    misses: int = 0


@dataclass
class CropBatch:
    """Faces cut out for the network, one row per track.

    images: (B, 3, R, R) float32 torch tensor, RGB in [0, 1], on the inference device.
    to_crop: (B, 2, 3) float64 affine, frame pixels -> crop pixels.
    to_frame: (B, 2, 3) float64 affine, crop pixels -> frame pixels (its inverse).
    track_ids: (B,) the track each row belongs to.
    """

    images: object  # torch.Tensor; kept untyped so this module needs no torch
    to_crop: np.ndarray
    to_frame: np.ndarray
    track_ids: list[int]


@dataclass
class Pose:
    """Head pose from a similarity fit of the dense mesh to the canonical face.

    rotation: (3, 3) float32, canonical -> frame axes (x right, y down, z to camera).
    angles: (3,) float32 degrees (pitch, yaw, roll).
    scale: canonical units -> frame pixels.
    translation: (3,) float32 frame pixels.
    """

    rotation: np.ndarray
    angles: np.ndarray
    scale: float
    translation: np.ndarray


@dataclass
class Reconstruction:
    """One face's 3D reconstruction in frame coordinates.

    track_id: the track it belongs to.
    landmarks: (68, 3) float32 frame pixels (x, y) and depth z (pixels).
    vertices: (F, 3) float32 dense mesh in frame pixels, in the layout's face-pixel
        order; triangles and UV coordinates of the mesh come from the UVLayout.
    pose: the head pose.
    """

    track_id: int
    landmarks: np.ndarray
    vertices: np.ndarray
    pose: Pose


@contextmanager
def timed(frame: Frame | None, stage: str) -> Iterator[None]:
    """Record ``stage``'s (start, end) on ``frame.spans``: the profiler reads these,
    so stages need nothing but the frame to be measured."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if frame is not None:
            frame.spans[stage] = (t0, time.perf_counter())
