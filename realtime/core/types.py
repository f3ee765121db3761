"""The data that flows between stages, and the names of the stages.

    Frame --detect--> Detections / FaceTrack --crop--> CropBatch --infer--> maps (+ Visibility)
          --decode--> Reconstruction (with Pose) --smooth--> FaceResult --render--> image

A stage takes and returns these, so any stage can be swapped (another detector,
another filter) without touching the rest. RunResult is how a whole run went.

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
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch  # for annotations only: this module needs no torch at run time


class UserError(Exception):
    """Bad input, flags or environment: the message is one line saying what went wrong
    and how to fix it, so the CLI prints it instead of a traceback."""


class UsageError(UserError):
    """Options that cannot work together, or a value out of range."""


class Stage(StrEnum):
    """The stages a frame passes, in order: the keys of ``Frame.spans`` and of the
    profiler's figures (a StrEnum, so "detect" and Stage.DETECT are the same key)."""

    CAPTURE = "capture"
    DETECT = "detect"
    CROP = "crop"
    INFER = "infer"
    OCCLUDE = "occlude"
    DECODE = "decode"
    SMOOTH = "smooth"
    RENDER = "render"
    OUTPUT = "output"


@dataclass
class Frame:
    """One captured image and its bookkeeping.

    image: (H, W, 3) uint8 BGR.
    seq: capture sequence number, from 0; gaps mean frames were dropped.
    t_capture: when the grabber got it (perf_counter seconds).
    spans: stage -> (start, end) perf_counter seconds, filled as it travels.
    """

    image: np.ndarray
    seq: int
    t_capture: float
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
    age: frames since the track started.
    """

    track_id: int
    center: np.ndarray
    size: float
    landmarks: np.ndarray | None = None
    age: int = 0


@dataclass
class CropBatch:
    """Faces cut out for the network, one row per track.

    images: (B, 3, R, R) float32 torch tensor, RGB in [0, 1], on the inference device.
    to_frame: (B, 2, 3) float64 affine, crop pixels -> frame pixels.
    track_ids: (B,) the track each row belongs to.
    """

    images: torch.Tensor
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
class Visibility:
    """Where one face is visible, from the occlusion network (realtime.live.occlusion).

    mask: (S, S) float32 in [0, 1], the probability that the face surface, not
        something in front of it, shows at each pixel of the network's map.
    to_frame: (2, 3) float64 affine, map pixels -> frame pixels (pixel centres).
    """

    mask: np.ndarray
    to_frame: np.ndarray


@dataclass
class Reconstruction:
    """One face's 3D reconstruction in frame coordinates.

    track_id: the track it belongs to.
    landmarks: (68, 3) float32 frame pixels (x, y) and depth z (pixels).
    vertices: (F, 3) float32 dense mesh in frame pixels, in the layout's face-pixel
        order; triangles and UV coordinates of the mesh come from the UVLayout.
    pose: the head pose.
    visibility: where the face shows (hands, hair, glasses in front of it hide it),
        or None when occlusion is off: effects then cover the whole face.
    face_logit: the engine's face / not-face logit for the crop (above 0: a face, as
        framed in training), or None for an engine without a face head. A network
        shown no face still draws one; this says whether it saw one.
    """

    track_id: int
    landmarks: np.ndarray
    vertices: np.ndarray
    pose: Pose
    visibility: Visibility | None = None
    face_logit: float | None = None


@dataclass
class FaceResult:
    """One frame's faces, what the face processor hands the renderer.

    reconstructions: smoothed, largest face first. raw: the same before smoothing.
    n_other_faces: faces seen beyond max_faces.
    status: one line for the HUD ("no face", "1 face", "2 faces (+3 not shown)",
        "bad frame: ...").
    detected: whether a full detection's result was used on this frame (one run
        inline, or one that finished on the tracker's worker thread).
    """

    reconstructions: list[Reconstruction] = field(default_factory=list)
    n_other_faces: int = 0
    status: str = "no face"
    detected: bool = False
    raw: list[Reconstruction] = field(default_factory=list)


@dataclass
class RunResult:
    """How a run went. reason: "end of input", "frames", "interrupted", "window closed"
    or "error". error: why input ended early (damaged file, lost camera), else None.
    elapsed_s: wall seconds from start to stop."""

    frames_out: int
    frames_captured: int
    dropped: int
    reason: str
    error: str | None
    elapsed_s: float

    @property
    def fps(self) -> float:
        return self.frames_out / self.elapsed_s if self.elapsed_s > 0 else 0.0


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
