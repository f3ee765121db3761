"""Follow faces from frame to frame with PRNet's own landmarks, so the detector runs
only now and then.

Each frame's crop comes from the previous frame's 68 landmarks, framed as the network
was trained (square of 1.44 x the longer side of their box, centred on it). The
detector runs when there is no face, when a track was lost (its landmarks failed the
sanity check), when a track's crop no longer holds a face, and every
``redetect_every`` frames to pick up new faces. A PRNet shown no face still draws one,
so landmarks alone cannot tell that a face left: with a bundle that has a face head,
the reconstruction's own logit tells (``Reconstruction.face_logit``, read in
``update``: no extra network); without one, the detector's last stage scores each
track's crop before it is reconstructed (``verify``, ~2 ms a frame on a CPU).

That periodic look for new faces runs on a worker thread while tracking goes on
(``background``): a full MTCNN pass costs one to two frames' time on a CPU, and run
inline it stalled every 20th frame (the pipeline's p95 latency). Its result, a few
frames old when it arrives, only adds faces and confirms tracks; it never moves a
track, whose own landmarks are newer. Detections with nothing to track yet (no
face, a lost or vanished one) run inline, since then there is nothing to show
meanwhile.

Up to ``max_faces`` faces are followed, the largest first; the others are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from realtime.core.types import Detections, FaceTrack, Reconstruction

#: PRNet framing: crop side = CROP_SCALE x the longer side of the 68-landmark box.
CROP_SCALE = 1.44
#: MTCNN box -> 68-landmark box, measured once: MTCNN (min_face 40)
#: on the first 200 AFLW2000-3D dev images (191 matched), against the pt3d_68 ground
#: truth; s = sqrt(box w * box h) (O-Net boxes are ~0.75 as wide as high). Medians:
#: landmark-box centre = box centre + (0.012, 0.156) s (landmarks sit lower: the box
#: includes the forehead); landmark-box longer side = 0.907 s (std 0.07 s).
DET_CENTER_OFFSET = np.array([0.012, 0.156])
DET_SIDE_SCALE = 0.907


def detection_crops(dets: Detections) -> tuple[np.ndarray, np.ndarray]:
    """Detector boxes -> (N, 2) crop centres and (N,) crop sides in PRNet's framing."""
    b = dets.boxes.astype(np.float64)
    s = np.sqrt(np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 0, None))
    centers = (b[:, :2] + b[:, 2:]) / 2 + DET_CENTER_OFFSET * s[:, None]
    return centers, CROP_SCALE * DET_SIDE_SCALE * s


def landmark_crop(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """(68, 2+) landmarks -> crop centre (2,) and side, the framing PRNet was trained on."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    return (lo + hi) / 2, float(CROP_SCALE * (hi - lo).max())


Framing = Callable[[Reconstruction], np.ndarray]  # a face -> the (68, 2+) landmarks its crop is framed on

#: The 68-scheme points that move with the mouth: the lower jaw and the lips.
MOUTH_MOVED = np.r_[5:12, 48:68]
_STILL = np.setdiff1d(np.arange(68), MOUTH_MOVED)


def still_mouth(landmarks: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(68, 2) ``landmarks`` with the lower jaw and the lips replaced by the mean face's
    (``mean``, (68, 2)), placed by a similarity fit of the mean face's other points onto
    the face's: where the jaw and lips would sit with the mouth at rest."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    src, dst = mean[_STILL], lm[_STILL]
    ms, md = src.mean(0), dst.mean(0)
    zs, zd = (src - ms) @ [1, 1j], (dst - md) @ [1, 1j]
    k = (np.conj(zs) @ zd) / (np.conj(zs) @ zs)  # rotation and scale as one complex number
    moved = k * ((mean[MOUTH_MOVED] - ms) @ [1, 1j])
    out = lm.copy()
    out[MOUTH_MOVED] = np.stack([moved.real, moved.imag], 1) + md
    return out


#: Beyond this head yaw (degrees) a frontal mean face's jaw says little about where the
#: face's own would sit: ``StillMouthFraming`` frames on the face's own landmarks there.
STILL_MOUTH_MAX_YAW = 45.0


class StillMouthFraming:
    """Frames a face's crops on ``still_mouth`` landmarks: as the mouth opens the chin
    drops, and framed on its own landmarks the next crop grows and moves down with it."""

    def __init__(self, mean: np.ndarray):
        self.mean = np.asarray(mean, np.float64)[:, :2]

    @classmethod
    def of(cls, layout) -> StillMouthFraming:
        """The framing with ``layout``'s mean face (a ``UVLayout``) at rest."""
        return cls(layout.canonical[layout.kpt_rows, :2])

    def __call__(self, rec: Reconstruction) -> np.ndarray:
        if abs(float(rec.pose.angles[1])) >= STILL_MOUTH_MAX_YAW:
            return rec.landmarks
        return still_mouth(rec.landmarks, self.mean)


def _overlaps(c1: np.ndarray, s1: float, c2: np.ndarray, s2: float) -> tuple[float, float]:
    """(IoU, intersection over the smaller) of two squares given as centre and side."""
    lo = np.maximum(c1 - s1 / 2, c2 - s2 / 2)
    hi = np.minimum(c1 + s1 / 2, c2 + s2 / 2)
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    return inter / (s1 * s1 + s2 * s2 - inter + 1e-9), inter / (min(s1, s2) ** 2 + 1e-9)


def _same_face(c1: np.ndarray, s1: float, c2: np.ndarray, s2: float, threshold: float) -> bool:
    """Overlap test that also catches a shrunken crop sitting inside a big one."""
    return _overlaps(c1, s1, c2, s2)[1] >= threshold


@dataclass
class TrackerConfig:
    """max_faces: faces followed at once (the largest). redetect_every: frames between
    detections while tracking. min_face: smallest landmark box (px) still a face.
    min_inside: fraction of landmarks that must lie in the frame. max_jump: largest
    centre move per frame, in face sizes. max_zoom: largest size change per frame
    (ratio). match_overlap: crop overlap (over the smaller crop) for a detection to
    be an existing track.
    recentre_iou: below this overlap a matched track is re-framed from the detection.
    verify_threshold: detector score below which an unconfirmed track is dropped.
    verify_every_frame: score every track's crop with the detector's last stage each
    frame (~2 ms) so a face that leaves is noticed at once, not at the next detection
    (a PRNet shown no face still draws one, so its landmarks alone cannot tell); off
    when the engine's face head scores the crops instead (FaceProcessor sets it).
    face_threshold, lost_threshold: a reconstruction's face logit at or above
    face_threshold is a face; below lost_threshold the track is lost at once (background,
    a crop that slid off: -8 to -12 on the media clips); in between the detector's last
    stage decides for that track (profiles, small faces: a face at -0.3 on the Hamilton
    clip; the check then runs on those frames only).
    hold: a crop moves only when the landmarks ask for a move or zoom larger than this
    fraction of the crop side. A still head then keeps the exact same crop, so the
    network sees the same pixels and its small biases cannot walk the crop, and the
    mesh, slowly across the face.
    background: run the periodic detection on a worker thread (see the module
    docstring); False runs it inline, so results depend only on the frames."""

    max_faces: int = 4
    redetect_every: int = 20
    min_face: float = 10.0
    min_inside: float = 0.6
    max_jump: float = 0.5
    max_zoom: float = 1.5
    match_overlap: float = 0.5
    recentre_iou: float = 0.6
    verify_threshold: float = 0.05
    verify_every_frame: bool = True
    face_threshold: float = 0.0
    lost_threshold: float = -4.0
    hold: float = 0.05
    background: bool = True


class Tracker:
    """Decides, each frame, which face crops to reconstruct.

    Per frame: ``predict(image)`` -> tracks to crop (runs the detector if needed), then
    ``update(reconstructions)`` -> the ids whose landmarks passed the sanity check and
    whose face logit (where the engine gives one) says a face is there. A followed face
    that is dropped triggers a detection next frame; a new detection the engine calls no
    face on its first frame is taken for the detector's false alarm and does not.
    """

    def __init__(
        self,
        detector: Callable[[object], Detections],
        config: TrackerConfig | None = None,
        framing: Framing | None = None,
    ):
        """``framing``: the landmarks a face's next crop is framed on
        (``landmark_crop``); by default its own. The expression benchmark moves them
        to measure how much its figures owe to where the crops fall."""
        self.detector = detector
        self.config = config or TrackerConfig()
        self.framing = framing
        self.tracks: list[FaceTrack] = []
        self.n_other = 0
        self.detected = False  # whether the last predict() ran the detector
        self.detections = 0  # how many times it ran
        self._next_id = 0
        self._since_detect = 0
        self._lost = False
        self._frame_size = (0, 0)
        self._image = None  # predict's frame, for update's detector check of a doubtful face
        # The background detection under way, on one long-lived worker thread rather
        # than a thread per detection: each new thread can take a new malloc arena, and
        # a run that started one every 20 frames grew by tens of MB over its first
        # minutes. The pool's thread is joined at interpreter exit, so a detection
        # running then finishes instead of being stopped inside torch's native code
        # (which aborts the process).
        self._job: Future[Detections] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")

    def close(self) -> None:
        """End the background detection thread, once a detection under way finished
        (torch's native code must not be stopped mid-call)."""
        self._job = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def reset(self) -> None:
        self.tracks, self.n_other, self._lost, self._since_detect = [], 0, False, 0
        self._image = None
        self._job = None  # a result still coming is for faces that are gone

    def predict(self, image) -> list[FaceTrack]:
        """Tracks to crop in this frame. ``image`` is whatever the detector takes."""
        cfg = self.config
        self._frame_size = _size_of(image)
        self._image = image
        self.detected = False
        job = self._job
        if job is not None and job.done():
            self._job = None
            detections = job.result()  # the worker's exception, if it failed, re-raised here
            self.detected = True
            self._merge(detections, image, reframe=False)
        due = not self.tracks or self._lost
        if not due and cfg.verify_every_frame:
            ok = self._verified(image, self.tracks)
            kept = [t for t, v in zip(self.tracks, ok, strict=True) if v]
            due = len(kept) < len(self.tracks)  # a face left: look again now
            self.tracks = kept
        if due:
            self._job = None
            self._start()
            self._merge(self.detector(image), image)
            self.detected = True
        elif self._since_detect >= cfg.redetect_every and self._job is None:
            self._start()
            if cfg.background:
                if hasattr(image, "fork"):  # Octaves: the worker builds its own reductions
                    image = image.fork()
                self._job = self._pool.submit(self.detector, image)
            else:
                self._merge(self.detector(image), image)
                self.detected = True
        else:
            self._since_detect += 1
        for t in self.tracks:
            t.age += 1
        return list(self.tracks)

    def _start(self) -> None:
        self.detections += 1
        self._since_detect, self._lost = 1, False

    def _merge(self, dets: Detections, image, reframe: bool = True) -> None:
        """Match detections to tracks and start tracks for new faces. ``reframe``: a
        matched track whose crop drifted off the face takes the detector's framing
        (not for a background result: its boxes are frames old)."""
        cfg = self.config
        centers, sides = detection_crops(dets)
        matched = np.zeros(len(dets), bool)
        kept, unmatched = [], []
        for t in self.tracks:
            ov = [_overlaps(t.center, t.size, c, s) for c, s in zip(centers, sides, strict=True)]
            j = int(np.argmax([o[1] for o in ov])) if ov else -1
            if j >= 0 and not matched[j] and ov[j][1] >= cfg.match_overlap:
                matched[j] = True
                if reframe and ov[j][0] < cfg.recentre_iou:  # drifted: take the detector's framing
                    t.center, t.size = centers[j].astype(np.float32), float(sides[j])
                kept.append(t)
            else:
                unmatched.append(t)
        if unmatched:  # the detector missed them: keep those the last stage still calls faces
            kept += [t for t, v in zip(unmatched, self._verified(image, unmatched), strict=True) if v]
        for c, s in zip(centers[~matched], sides[~matched], strict=True):
            if not any(_same_face(t.center, t.size, c, s, cfg.match_overlap) for t in kept):
                kept.append(FaceTrack(track_id=self._new_id(), center=c.astype(np.float32), size=float(s)))
        kept.sort(key=lambda t: -t.size)
        self.tracks = kept[: cfg.max_faces]
        self.n_other = len(kept) - len(self.tracks)

    def _verified(self, image, tracks: list[FaceTrack]) -> np.ndarray:
        """(N,) bool: whether each track's crop still looks like a face, all tracks in
        one batched call of the detector's last stage."""
        verify = getattr(self.detector, "verify", None)
        if verify is None or not tracks:
            return np.ones(len(tracks), bool)
        s = np.array([t.size for t in tracks]) / (CROP_SCALE * DET_SIDE_SCALE)  # detector-sized boxes
        c = np.stack([t.center for t in tracks]).astype(np.float64) - DET_CENTER_OFFSET * s[:, None]
        boxes = np.concatenate([c - s[:, None] / 2, c + s[:, None] / 2], 1)
        return np.asarray(verify(image, boxes)) >= self.config.verify_threshold

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def update(self, reconstructions: list[Reconstruction]) -> set[int]:
        """Move each track's crop onto its reconstruction's landmarks; drop tracks whose
        landmarks fail the sanity check, whose face logit says the crop holds no face,
        or that got none. Returns the ids kept."""
        recs = {r.track_id: r for r in reconstructions}
        faces = self._faces([recs.get(t.track_id) for t in self.tracks])
        kept = []
        for t, face in zip(self.tracks, faces, strict=True):
            r = recs.get(t.track_id)
            if r is not None and face and self.sane(t, r.landmarks):
                t.landmarks = np.asarray(r.landmarks[:, :2], np.float32)
                self._move(t, r)
                kept.append(t)
            elif face or t.age > 1:
                self._lost = True  # a face we followed is gone: look for it at once
            # else a detection the engine calls no face on its first frame: the
            # detector's false alarm (a blurred crowd, a hand), nothing to look for now
        # two tracks that slid onto one face: keep the older
        kept.sort(key=lambda t: -t.age)
        unique: list[FaceTrack] = []
        for t in kept:
            if not any(_same_face(t.center, t.size, u.center, u.size, 0.6) for u in unique):
                unique.append(t)
        self.tracks = sorted(unique, key=lambda t: -t.size)
        self._image = None  # the frame is not kept past its own update
        return {t.track_id for t in self.tracks}

    def _faces(self, recs: list[Reconstruction | None]) -> np.ndarray:
        """(N,) bool per track: whether its crop holds a face by the reconstruction's
        face logit (True where the engine cannot say); a doubtful logit asks the
        detector's last stage, for those tracks only."""
        cfg = self.config
        out = np.ones(len(recs), bool)
        doubt = []
        for i, r in enumerate(recs):
            if r is None or r.face_logit is None or r.face_logit >= cfg.face_threshold:
                continue
            if r.face_logit < cfg.lost_threshold:
                out[i] = False
            else:
                doubt.append(i)
        if doubt and self._image is not None:
            out[doubt] = self._verified(self._image, [self.tracks[i] for i in doubt])
        return out

    def reframe(self, reconstructions: list[Reconstruction]) -> None:
        """Frame the next crops on these reconstructions' landmarks instead (the smoothed
        ones: a crop that jitters with the raw landmarks feeds the jitter back into the
        network)."""
        recs = {r.track_id: r for r in reconstructions}
        for t in self.tracks:
            r = recs.get(t.track_id)
            if r is not None and np.isfinite(r.landmarks).all():
                self._move(t, r)

    def _move(self, t: FaceTrack, rec: Reconstruction) -> None:
        """Frame ``t`` on ``rec`` (``framing``), unless the change is within ``hold``."""
        c, s = landmark_crop(rec.landmarks if self.framing is None else self.framing(rec))
        hold = self.config.hold * t.size
        if np.linalg.norm(c - t.center) > hold or abs(s - t.size) > hold:
            t.center, t.size = c.astype(np.float32), s

    def sane(self, track: FaceTrack, landmarks: np.ndarray) -> bool:
        """Whether ``landmarks`` still look like the face ``track`` was following:
        finite, not collapsed or exploded, mostly inside the frame, and not jumped
        or zoomed more than a head can in one frame."""
        cfg = self.config
        lm = np.asarray(landmarks, np.float64)[:, :2]
        if lm.shape != (68, 2) or not np.isfinite(lm).all():
            return False
        c, s = landmark_crop(lm)
        side = s / CROP_SCALE
        w, h = lm.max(0) - lm.min(0)
        if side < cfg.min_face or min(w, h) < 0.3 * side:
            return False
        fw, fh = self._frame_size
        if fw and fh:
            if side > 2 * max(fw, fh):
                return False
            inside = (lm[:, 0] >= 0) & (lm[:, 0] < fw) & (lm[:, 1] >= 0) & (lm[:, 1] < fh)
            if inside.mean() < cfg.min_inside:
                return False
        prev_side = track.size / CROP_SCALE
        if np.linalg.norm(c - track.center) > cfg.max_jump * prev_side:
            return False
        return 1 / cfg.max_zoom <= side / prev_side <= cfg.max_zoom


def _size_of(image) -> tuple[int, int]:
    """(width, height) of a numpy frame, a tensor or realtime.live.crop.Octaves."""
    if isinstance(image, np.ndarray):
        return image.shape[1], image.shape[0]
    if hasattr(image, "width") and hasattr(image, "height"):
        return int(image.width), int(image.height)
    shape = getattr(image, "shape", None)
    return (int(shape[-1]), int(shape[-2])) if shape is not None else (0, 0)
