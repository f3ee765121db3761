"""Frame in, faces out: detector + tracker + crop + engine (+ visibility) + decoder +
smoother.

Every part is injected, so any can be swapped (another detector, another filter) and
tests can use real parts without the live loop. ``process`` never raises: a bad frame
or a failing stage gives an empty result whose ``status`` says what happened, because
one odd frame must not take down a live video loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import torch

from realtime.core.types import FaceResult, Frame, Reconstruction, Stage, UserError, timed
from realtime.core.weights import Bundle
from realtime.live.crop import Octaves, crop_faces, to_tensor
from realtime.live.decode import Decoder
from realtime.live.detect import MTCNN
from realtime.live.engines import Engine, create_engine, resolve_device
from realtime.live.occlusion import EngineHead, VisibilityModel, visibilities
from realtime.live.register import CropRegistration
from realtime.live.smooth import OneEuroFilter, Smoother
from realtime.live.track import Framing, Tracker, TrackerConfig, landmark_crop


def _status(n: int, others: int) -> str:
    s = "no face" if n == 0 else f"{n} face" + ("s" if n > 1 else "")
    return s + (f" (+{others} not shown)" if others else "")


Crop = tuple[float, float, float]  # (side, x shift, y shift) x the trained framing's side
#: Crops ``reconstruct_photo`` averages a photo's face over: other scales and shifts,
#: each also mirrored, so the crops' errors (largely independent) average out (the
#: face swap's source).
PHOTO_CROPS: tuple[Crop, ...] = ((1.0, 0.0, 0.0), (0.9, 0.02, 0.0), (1.1, -0.02, 0.0), (1.0, 0.0, 0.03))


class FaceProcessor:
    """``process(frame) -> FaceResult``; stages are recorded on ``frame.spans``.

    ``lock`` is held while a frame is processed: ``reconstruct_photo`` shares the
    engine and detector from another thread (a source face uploaded mid-run).

    The tracker runs background detections on a thread of its own: ``close()`` ends it
    (or use the processor as a context manager: ``with FaceProcessor.from_bundle(b) as
    faces:``)."""

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
        registration_factory: Callable[[], CropRegistration] | None = CropRegistration,
        framing: Framing | None = None,
    ):
        self.engine, self.decoder = engine, decoder
        self.visibility = visibility  # None: effects cover the whole face
        self._visibility_net = visibility  # kept while occlusion is off, for set_occlusion
        self.frame_visibility = True  # set_frame_visibility
        self.device = torch.device(device)
        self.detector = detector if detector is not None else MTCNN(device=self.device)
        self.max_faces = max_faces
        # an engine with a face head tells a lost face from the reconstruction itself:
        # no detector check on tracked frames
        config = TrackerConfig(max_faces=max_faces, verify_every_frame=not engine.scores)
        self.tracker = tracker or Tracker(self.detector, config, framing)
        self.filter_factory = filter_factory
        self.smoother = Smoother(filter_factory) if filter_factory is not None else None
        self.registration_factory = registration_factory
        self.registration = registration_factory() if registration_factory is not None else None
        self.resolution = engine.resolution
        self.last_error = ""
        self.lock = threading.Lock()
        self.overlap = False  # set_overlap
        self._beside: ThreadPoolExecutor | None = None  # the visibility network's thread, when overlapping

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        backend: str = "auto",
        device: str = "auto",
        *,
        engine_options: dict | None = None,
        **parts,
    ) -> FaceProcessor:
        """The one way to build a processor from weights: the engine (``backend`` by
        name or ``auto``, on ``device``; ``engine_options`` go to
        realtime.live.engines.create_engine: mirror=, verbose=, retime=, warmup=), its
        decoder, and any other part by keyword (detector=, tracker=, filter_factory=,
        max_faces=, visibility=, registration_factory=, framing=: the tracker's)."""
        device = resolve_device(device)
        engine = create_engine(bundle, backend, device, **(engine_options or {}))
        return cls(engine, Decoder(bundle.layout), device=device, **parts)

    def fresh(self, **parts) -> FaceProcessor:
        """A new processor sharing this one's engine, decoder and detector (their
        weights load once) with its own tracking and smoothing state; keywords replace
        parts (e.g. ``filter_factory=None, max_faces=1`` for still photos)."""
        shared = {
            "detector": self.detector,
            "filter_factory": self.filter_factory,
            "max_faces": self.max_faces,
            "device": self.device,
            "visibility": self.visibility,
            "registration_factory": self.registration_factory,
            "framing": self.tracker.framing,
        }
        return FaceProcessor(self.engine, self.decoder, **{**shared, **parts})

    def close(self) -> None:
        """End the tracker's detection thread (waits for a detection under way) and the
        visibility network's, if it ran beside the engine."""
        self.tracker.close()
        if self._beside is not None:
            self._beside.shutdown(wait=True)
            self._beside = None

    def __enter__(self) -> FaceProcessor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings (any thread) ---------------------------------------------------------
    @property
    def mirror(self) -> bool:
        """Whether each face is averaged with its mirror image's reconstruction."""
        return bool(self.engine.mirror)

    def set_mirror(self, on: bool) -> None:
        """Mirror averaging on or off, from the next frame."""
        self.engine.mirror = bool(on)

    @property
    def occlusion(self) -> bool:
        """Whether faces get visibility maps (what covers them stays in front of effects)."""
        return self.visibility is not None

    def set_occlusion(self, on: bool) -> None:
        """Visibility maps on or off, from the next frame. Unless a visibility model
        was given: the engine's own head where the bundle has one (the maps come with
        the position maps, in one pass), else the shipped visibility network, loaded on
        first use."""
        if on and self._visibility_net is None:
            from realtime.live.occlusion import load_visibility

            own = EngineHead(self.engine) if self.engine.sees else None
            self._visibility_net = own or load_visibility(self.device)
        self.visibility = self._visibility_net if on else None

    def set_overlap(self, on: bool) -> None:
        """Run a separate visibility network beside the engine, on a thread of its own,
        instead of after it. A frame from a live camera then comes through sooner (2-core
        EPYC, fed at 30 fps: capture-to-output p50 / p95 19 / 24 -> 17 / 22 ms and 18 / 23
        -> 15 / 21), but where frames queue up (a file processed as fast as it goes) the
        two networks fight for the cores and fewer get through (73-77 -> 67-69 fps at
        640x480). The app turns it on for live input only."""
        self.overlap = bool(on)

    def set_frame_visibility(self, on: bool) -> None:
        """Whether live frames' faces get visibility maps while occlusion is on: only
        effects that paint the face's surface read them (not the landmarks or pose
        overlays), so the stage's owner turns them off there and saves the network's
        ~2 ms a face. Photos (``reconstruct_photo``) get them whenever occlusion is on."""
        self.frame_visibility = bool(on)

    # -- frames ------------------------------------------------------------------------
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
            self._reset()
            return FaceResult(status=f"error: {type(e).__name__}")

    def _process(self, frame: Frame) -> FaceResult:
        with timed(frame, Stage.DETECT):
            src = Octaves.of(frame.image, self.device)
            tracks = self.tracker.predict(src)
        detected = self.tracker.detected
        if not tracks:
            self._reset(tracker=False)
            return FaceResult(n_other_faces=self.tracker.n_other, status=_status(0, 0), detected=detected)
        with timed(frame, Stage.CROP):
            centers, sides = np.stack([t.center for t in tracks]), np.array([t.size for t in tracks])
            ids = [t.track_id for t in tracks]
            if self.registration is not None:  # a still face's crop follows its pixels
                moved = self.registration(frame.image, centers, sides, ids)
                centers = centers if moved is None else moved
            batch = crop_faces(src, centers, sides, self.resolution, ids)
        model = self.visibility if self.frame_visibility else None
        beside = None
        if model is not None and self.overlap and not isinstance(model, EngineHead):
            if self._beside is None:
                self._beside = ThreadPoolExecutor(1, thread_name_prefix="visibility")
            beside = self._beside.submit(visibilities, model, batch.images, batch.to_frame)
        with timed(frame, Stage.INFER):
            # a GPU engine's maps stay on the GPU for decoding
            out = self.engine.run_all(batch.images)
        seen, logits = None, out.logits
        if model is not None:
            with timed(frame, Stage.OCCLUDE):  # overlapping: the wait for the network beside
                if beside is not None:
                    seen = beside.result()
                else:  # the engine's head: its maps came with the pass
                    own = out.visibility if isinstance(model, EngineHead) else None
                    seen = visibilities(model, batch.images, batch.to_frame, own)
        with timed(frame, Stage.DECODE):
            recs = self.decoder.decode(out.maps, batch.to_frame, batch.track_ids, out.lids)
        if seen is not None or logits is not None:  # one copy per face with what the stages added
            recs = [
                replace(
                    r,
                    visibility=None if seen is None else seen[i],
                    face_logit=None if logits is None else float(logits[i]),
                )
                for i, r in enumerate(recs)
            ]
        alive = self.tracker.update(recs)
        recs = [r for r in recs if r.track_id in alive]
        with timed(frame, Stage.SMOOTH):
            smoothed = self.smoother(recs, frame.t_capture) if self.smoother is not None else recs
            self.tracker.reframe(smoothed)
        others = self.tracker.n_other
        return FaceResult(smoothed, others, _status(len(smoothed), others), detected, raw=recs)

    def _reset(self, tracker: bool = True) -> None:
        """Forget what was followed: the tracks (unless ``tracker`` is False), the
        crops' references and the filters' state."""
        if tracker:
            self.tracker.reset()
        if self.registration is not None:
            self.registration.reset()
        if self.smoother is not None:
            self.smoother.reset()

    # -- still photos ------------------------------------------------------------------
    def reconstruct_photo(
        self,
        photo: np.ndarray,
        name: str = "photo",
        *,
        one_face: bool = False,
        crops: Sequence[Crop] = (),
        rounds: int = 2,
    ) -> Reconstruction:
        """The largest face of a still photo (e.g. the face swap's source), with this
        processor's engine and detector and no smoothing; UserError (one line naming
        ``name``) when there is no usable face, or with ``one_face`` when another face
        at least half its size shares the photo (whose face is meant is then a guess).

        ``crops`` (e.g. PHOTO_CROPS): the face refined by averaging the network over
        these crops, each also mirrored, ``rounds`` times (each round framed on the
        last one's landmarks): a second or two on a CPU, for a face that is reused for
        a whole run. Then, while occlusion is on, its visibility map too (what covers
        the photo's face: a swap fills it in)."""
        with self.fresh(filter_factory=None, max_faces=1, visibility=None) as still:
            with self.lock:
                result = still.process(Frame(photo, 0, 0.0))
                found = self.detector(photo) if one_face and result.reconstructions else None
        if not result.reconstructions:
            why = result.status + (f" ({still.last_error})" if still.last_error else "")
            raise UserError(f"{name}: {why}; use a clear photo of one face looking at the camera")
        if found is not None and len(found) > 1:
            sides = np.sqrt(np.prod(found.boxes[:, 2:] - found.boxes[:, :2], axis=1))
            if (sides >= 0.5 * sides.max()).sum() > 1:
                raise UserError(
                    f"{name}: {int((sides >= 0.5 * sides.max()).sum())} faces: use a photo of one person "
                    "(crop it to the face you want)"
                )
        rec = result.reconstructions[0]
        return self._refine(photo, rec, crops, rounds) if crops else rec

    def _refine(
        self,
        photo: np.ndarray,
        first: Reconstruction,
        crops: Sequence[Crop],
        rounds: int,
    ) -> Reconstruction:
        """``first`` averaged over ``crops`` (see reconstruct_photo): one face and its
        mirror image a call, under the lock that keeps a live loop's frames apart."""
        src = to_tensor(photo, self.device)
        rec = first
        for _ in range(rounds):
            c, s = landmark_crop(rec.landmarks)
            centres = np.array([c + np.array([dx, dy]) * s for _, dx, dy in crops])
            sides = np.array([s * k for k, _, _ in crops])
            batch = crop_faces(src, centres, sides, self.resolution, list(range(len(sides))))
            maps = []
            with self.lock, torch.inference_mode():
                for i in range(len(sides)):
                    maps.append(self.engine.run_all(batch.images[i : i + 1], mirror=True).maps.cpu())
            verts = self.decoder.vertices(torch.cat(maps), batch.to_frame)
            v = verts.mean(0).astype(np.float32)
            rec = Reconstruction(first.track_id, v[self.decoder.kpt_rows].copy(), v, self.decoder.pose(v))
        visibility = self.visibility
        if visibility is not None:
            c, s = landmark_crop(rec.landmarks)
            batch = crop_faces(src, c[None], np.array([s]), self.resolution, [0])
            rec = replace(rec, visibility=visibilities(visibility, batch.images, batch.to_frame)[0])
        return rec


def _check(frame: Frame) -> str:
    img = getattr(frame, "image", None)
    if not isinstance(img, np.ndarray):
        return "no image"
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        return f"expected (H, W, 3) uint8 BGR, got {img.dtype} {img.shape}"
    if min(img.shape[:2]) < 12:
        return f"image too small ({img.shape[1]}x{img.shape[0]})"
    return ""
