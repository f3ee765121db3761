"""Frame in, faces out: detector + tracker + crop + engine (+ visibility) + decoder +
smoother.

Every part is injected, so any can be swapped (another detector, another filter) and
tests can use real parts without the live loop. ``process`` never raises: a bad frame
or a failing stage gives an empty result whose ``status`` says what happened, because
one odd frame must not take down a live video loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from realtime.core.types import FaceResult, Frame, Reconstruction, Stage, UserError, timed
from realtime.core.weights import Bundle
from realtime.live.crop import Octaves, crop_faces
from realtime.live.decode import Decoder
from realtime.live.detect import MTCNN
from realtime.live.engines import Engine, create_engine, resolve_device
from realtime.live.occlusion import VisibilityModel, visibilities
from realtime.live.smooth import OneEuroFilter, Smoother
from realtime.live.track import Tracker, TrackerConfig


def _status(n: int, others: int) -> str:
    s = "no face" if n == 0 else f"{n} face" + ("s" if n > 1 else "")
    return s + (f" (+{others} not shown)" if others else "")


class FaceProcessor:
    """``process(frame) -> FaceResult``; stages are recorded on ``frame.spans``.

    ``lock`` is held while a frame is processed: ``reconstruct_photo`` shares the
    engine and detector from another thread (a source face uploaded mid-run)."""

    def __init__(
        self,
        engine: Engine,
        decoder: Decoder,
        detector: Callable | None = None,
        tracker: Tracker | None = None,
        filter_factory: Callable | None = OneEuroFilter,
        max_faces: int = 4,
        device: str | torch.device = "cpu",
        visibility: VisibilityModel | None = None,
        needs_visibility: Callable[[], bool] = lambda: True,
    ):
        self.engine, self.decoder = engine, decoder
        self.visibility = visibility  # None: effects cover the whole face
        self.needs_visibility = needs_visibility  # e.g. only while a surface effect is drawn
        self.device = torch.device(device)
        self.detector = detector if detector is not None else MTCNN(device=self.device)
        self.max_faces = max_faces
        # an engine with a face head tells a lost face from the reconstruction itself:
        # no detector check on tracked frames
        config = TrackerConfig(max_faces=max_faces, verify_every_frame=not engine.scores)
        self.tracker = tracker or Tracker(self.detector, config)
        self.filter_factory = filter_factory
        self.smoother = Smoother(filter_factory) if filter_factory is not None else None
        self.resolution = engine.resolution
        self.last_error = ""
        self.lock = threading.Lock()

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        backend: str = "auto",
        device: str = "auto",
        mirror: bool = False,
        *,
        verbose: bool = False,
        retime: bool = False,
        engine_options: dict | None = None,
        **parts,
    ) -> FaceProcessor:
        """The one way to build a processor from weights: the engine (``backend`` by
        name or ``auto``, on ``device``, mirror averaging on or off: ``engine.mirror``
        can be flipped later), its decoder, and any other part by keyword (detector=,
        tracker=, filter_factory=, max_faces=, visibility=, needs_visibility=).
        ``engine_options`` go to the engine (e.g. ``warmup=(1, 4)``)."""
        device = resolve_device(device)
        engine = create_engine(
            bundle, backend, device, verbose=verbose, mirror=mirror, retime=retime, **(engine_options or {})
        )
        return cls(engine, Decoder(bundle.layout), device=device, **parts)

    def fresh(self, **parts) -> FaceProcessor:
        """A new processor sharing this one's engine, decoder and detector (their
        weights load once) with its own tracking and smoothing state; keywords replace
        parts (e.g. ``filter_factory=None, max_faces=1`` for still photos)."""
        kept = {
            "detector": self.detector,
            "filter_factory": self.filter_factory,
            "max_faces": self.max_faces,
            "device": self.device,
            "visibility": self.visibility,
            "needs_visibility": self.needs_visibility,
        }
        return FaceProcessor(self.engine, self.decoder, **{**kept, **parts})

    def process(self, frame: Frame) -> FaceResult:
        problem = _check(frame)
        if problem:
            self.last_error = problem
            return FaceResult(status=f"bad frame: {problem}")
        try:
            with self.lock:
                return self._process(frame)
        except Exception as e:  # a live loop must survive any one frame
            self.last_error = f"{type(e).__name__}: {e}"
            self.tracker.reset()
            if self.smoother is not None:
                self.smoother.reset()
            return FaceResult(status=f"error: {type(e).__name__}")

    def _process(self, frame: Frame) -> FaceResult:
        with timed(frame, Stage.DETECT):
            src = Octaves.of(frame.image, self.device)
            tracks = self.tracker.predict(src)
        detected = self.tracker.detected
        if not tracks:
            if self.smoother is not None:
                self.smoother.reset()
            return FaceResult(n_other_faces=self.tracker.n_other, status=_status(0, 0), detected=detected)
        with timed(frame, Stage.CROP):
            batch = crop_faces(
                src,
                np.stack([t.center for t in tracks]),
                np.array([t.size for t in tracks]),
                self.resolution,
                [t.track_id for t in tracks],
            )
        with timed(frame, Stage.INFER):
            # a GPU engine's maps stay on the GPU for decoding
            maps, logits = self.engine.run_scored(batch.images)
        seen = None
        if self.visibility is not None and self.needs_visibility():
            with timed(frame, Stage.OCCLUDE):
                seen = visibilities(self.visibility, batch.images, batch.to_frame)
        with timed(frame, Stage.DECODE):
            recs = self.decoder.decode(maps, batch.to_frame, batch.track_ids)
        if seen is not None or logits is not None:  # one copy per face with what the stages added
            recs = [
                replace(
                    r,
                    visibility=None if seen is None else seen[i],
                    face_logit=None if logits is None else float(logits[i]),
                )
                for i, r in enumerate(recs)
            ]
        kept = self.tracker.update(recs)
        recs = [r for r in recs if r.track_id in kept]
        with timed(frame, Stage.SMOOTH):
            smoothed = self.smoother(recs, frame.t_capture) if self.smoother is not None else recs
            self.tracker.reframe(smoothed)
        others = self.tracker.n_other
        return FaceResult(smoothed, others, _status(len(smoothed), others), detected, raw=recs)

    def reconstruct_photo(
        self, photo: np.ndarray, what: str = "photo", alone: bool = False
    ) -> Reconstruction:
        """The largest face of a still photo (e.g. the face swap's source), with this
        processor's engine and detector and no smoothing; UserError (one line naming
        ``what``) when there is no usable face, or with ``alone`` when another face at
        least half its size shares the photo (whose face is meant is then a guess)."""
        once = self.fresh(filter_factory=None, max_faces=1, visibility=None)
        with self.lock:
            result = once.process(Frame(photo, 0, 0.0))
            found = self.detector(photo) if alone and result.reconstructions else None
        if not result.reconstructions:
            why = result.status + (f" ({once.last_error})" if once.last_error else "")
            raise UserError(f"{what}: {why}; use a clear photo of one face looking at the camera")
        if found is not None and len(found) > 1:
            sides = np.sqrt(np.prod(found.boxes[:, 2:] - found.boxes[:, :2], axis=1))
            if (sides >= 0.5 * sides.max()).sum() > 1:
                raise UserError(
                    f"{what}: {int((sides >= 0.5 * sides.max()).sum())} faces: use a photo of one person "
                    "(crop it to the face you want)"
                )
        return result.reconstructions[0]


def _check(frame: Frame) -> str:
    img = getattr(frame, "image", None)
    if not isinstance(img, np.ndarray):
        return "no image"
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        return f"expected (H, W, 3) uint8 BGR, got {img.dtype} {img.shape}"
    if min(img.shape[:2]) < 12:
        return f"image too small ({img.shape[1]}x{img.shape[0]})"
    return ""
