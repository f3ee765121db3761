"""Hold the mesh still when the head is still: the One Euro filter (Casiez, Roussel
and Vogel, CHI 2012) on landmarks, dense vertices and pose, one filter per track.

The One Euro filter is a low-pass whose cutoff rises with speed:
``cutoff = min_cutoff + beta * speed``. Slow or still, the cutoff is low and jitter is
averaged away; fast, the cutoff is high and the output keeps up. It is driven by the
frames' timestamps, not a frame count, so it behaves the same at 15 and 60 fps.

One speed per face, not per point: the speed is that of the 68 landmarks' centroid,
in face sizes per second (landmark-box sides), so the parameters do not depend on the
camera resolution or how close the face is, and all points of a face get the same
blend factor: the smoothed mesh is a blend of whole meshes, so a rigidly moving head
stays rigid (per-point cutoffs would smear the shape during motion). The blend itself
is one Numba loop over every value of the face (landmarks, vertices, pose).

A face that holds still while it talks or blinks would have its mouth and lids held
still too, since the head's speed is what opens the filter. So the mouth (with the jaw
below it) and the eyes get a speed of their own: how fast the mouth's opening and
width and the lids' opening change, in eye distances per second. Each value's blend
factor is the larger of the head's and its region's (a vertex's share of a region
fades with its distance from the region's landmarks, measured once per track), so
speech and blinks pass at once while the head's jitter stays filtered, and on a still,
silent face nothing changes: the regions' speeds stay under their own still floor.

Tuning (as Casiez et al. suggest): with the head still, lower ``min_cutoff`` until the
mesh stops jittering; then move the head quickly and raise ``beta`` until it stops
lagging behind. ``d_cutoff`` (the speed estimate's own low-pass) rarely needs changing.
Defaults: min_cutoff 0.3 Hz, beta 10 per (face size/s), d_cutoff 1 Hz. beta and
d_cutoff were chosen on a simulated face (0.5 px noise, 0.5 Hz sway of 0.8 face/s: sway
lag ~0.8 frame at 30 fps, 0.35 at 15 fps). min_cutoff was 0.1 Hz until the crops were
registered (realtime.live.register): on the peers benchmark's still face (moved by
+-0.5 px a frame) the smoothed landmarks then moved 0.039 px a frame against 0.165
before, and a head drifting slowly (7.5 px/s, under the still floor) trailed 5.8 px
behind. At 0.3 Hz: 0.052 px a frame still, 3.4 px behind the drift (1 Hz: 0.098 and
1.2, the lids and mouth after smoothing no nearer MediaPipe's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numba
import numpy as np

from realtime.core.landmarks import EYE_L, EYE_R, LIPS, MOUTH_IN, Expression
from realtime.core.types import Pose, Reconstruction
from realtime.live.decode import rotation_to_angles

#: A gap longer than this (seconds) starts the filter afresh (a stall, a dropped source).
MAX_GAP = 0.5
#: Hz, the cut-off on a still face (see the module docstring); strength 0.5 is this.
DEFAULT_MIN_CUTOFF = 0.3


@numba.njit(cache=True, fastmath=True)
def _blend(x: np.ndarray, state: np.ndarray, a: float, regions: np.ndarray, a_regions: np.ndarray) -> None:
    """state += max(a, regions[i, r] * a_regions[r]) * (x - state), in place, over
    every value (``regions`` (N, R) each value's share of each region)."""
    for i in range(x.shape[0]):
        ai = a
        for r in range(a_regions.shape[0]):
            ai = max(ai, regions[i, r] * a_regions[r])
        state[i] += ai * (x[i] - state[i])


def _alpha(dt: float, cutoff: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def _pack(rec: Reconstruction) -> np.ndarray:
    p = rec.pose
    return np.concatenate(
        [
            rec.landmarks.ravel(),
            rec.vertices.ravel(),
            np.asarray(p.rotation, np.float64).ravel(),
            [p.scale],
            np.asarray(p.translation, np.float64).ravel(),
        ]
    ).astype(np.float64)


def _nearest_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    return (u * d) @ vt


@dataclass
class OneEuroConfig:
    min_cutoff: float = DEFAULT_MIN_CUTOFF  # Hz, cutoff when still: lower = steadier, more lag when slow
    beta: float = 10.0  # Hz per (face size / s): higher = less lag in fast motion
    d_cutoff: float = 1.0  # Hz, low-pass on the speed estimate
    # Face sizes / s below which the head counts as still: the network's own
    # frame-to-frame jitter reads as a small speed, and without this floor that speed
    # alone opens the filter (beta x jitter) and lets the jitter through.
    still_speed: float = 0.15
    # The mouth's and the lids' own speeds (eye distances / s of their openings):
    # their beta and still floor, as the head's. The lids move about a quarter as far
    # as the mouth (0.03-0.17 eye distances against 0-0.6), so their floor is lower and
    # their beta higher, about in proportion (docs/expression.md, session 19: carphone's
    # lids r 0.57 -> 0.63 against MediaPipe at 60 / 0.15 instead of the mouth's 20 / 0.4;
    # a still face's lids stay under 0.001 eye distances of noise, well below the floor).
    expression_beta: float = 20.0
    expression_still: float = 0.4
    lid_beta: float = 60.0
    lid_still: float = 0.15

    #: min_cutoff at or above this passes every frame through: smoothing off.
    OFF = 1e9

    @property
    def strength(self) -> float:
        """How steady, 0..1: 0 off, 0.5 the default (DEFAULT_MIN_CUTOFF), 1 the steadiest
        (cut-off 10x lower when still: steadier, more lag in slow motion). The one
        formula for both ways, so the panel and the app agree."""
        if self.min_cutoff >= self.OFF:
            return 0.0
        return round(min(max(0.5 - math.log10(self.min_cutoff / DEFAULT_MIN_CUTOFF) / 2, 0.0), 1.0), 3)

    @strength.setter
    def strength(self, value: float) -> None:
        value = min(max(float(value), 0.0), 1.0)
        # A cut-off far above the frame rate passes every frame through unchanged.
        self.min_cutoff = DEFAULT_MIN_CUTOFF * 10 ** (2 * (0.5 - value)) if value > 0 else self.OFF


class OneEuroFilter:
    """One face's filter: ``filter(rec, t) -> smoothed Reconstruction``."""

    def __init__(self, config: OneEuroConfig | None = None):
        self.config = config or OneEuroConfig()
        self.reset()

    def reset(self) -> None:
        self._state: np.ndarray | None = None
        self._t = 0.0
        self._centroid = np.zeros(3)
        self._speed = 0.0
        self._expr = np.zeros(len(REGIONS))  # the regions' measures, last frame
        self._expr_speed = np.zeros(len(REGIONS))
        self._regions = np.zeros((0, len(REGIONS)))

    def __call__(self, rec: Reconstruction, t: float) -> Reconstruction:
        x = _pack(rec)
        lm = np.asarray(rec.landmarks, np.float64)
        centroid = lm.mean(0)
        face = max(float((lm[:, :2].max(0) - lm[:, :2].min(0)).max()), 1e-6)
        dt = t - self._t
        expr = _region_measures(lm)
        if self._state is None or self._state.shape != x.shape or not 0 < dt <= MAX_GAP:
            self._state, self._t, self._centroid, self._speed = x, t, centroid, 0.0
            self._expr, self._expr_speed = expr, np.zeros(len(REGIONS))
            self._regions = region_weights(lm, rec.vertices, x.size)
            return _unpack(rec, x)
        cfg = self.config
        raw_speed = float(np.linalg.norm(centroid - self._centroid)) / dt / face
        a_d = _alpha(dt, cfg.d_cutoff)
        self._speed += a_d * (raw_speed - self._speed)
        self._expr_speed += a_d * (np.abs(expr - self._expr) / dt - self._expr_speed)
        a = _alpha(dt, cfg.min_cutoff + cfg.beta * max(0.0, self._speed - cfg.still_speed))
        a_regions = np.array(
            [
                _alpha(dt, cfg.min_cutoff + beta * max(0.0, v - still))
                for v, beta, still in zip(
                    self._expr_speed,
                    (cfg.expression_beta, cfg.lid_beta),
                    (cfg.expression_still, cfg.lid_still),
                    strict=True,
                )
            ]
        )
        _blend(x, self._state, a, self._regions, a_regions)
        self._t, self._centroid, self._expr = t, centroid, expr
        return _unpack(rec, self._state)

    @property
    def speed(self) -> float:
        """Latest filtered speed, face sizes per second."""
        return self._speed


#: The regions with a speed of their own (``_region_measures`` reads it): the landmarks
#: each spans, its full-weight radius and its fade-out radius, in eye distances.
REGIONS = (
    (list(range(4, 13)) + LIPS + MOUTH_IN, 0.1, 0.3),  # the mouth, and the jaw below it
    (EYE_L + EYE_R, 0.08, 0.3),
)


def _region_measures(lm: np.ndarray) -> np.ndarray:
    """(len(REGIONS),) what each region's speed is read from: the mouth's opening plus
    its width, the lids' opening (eye distances)."""
    e = Expression.from_landmarks(lm)
    return np.array([float(e.mouth) + float(e.width), float(e.eyes)])


def region_weights(lm: np.ndarray, vertices: np.ndarray, size: int) -> np.ndarray:
    """(size, len(REGIONS)) each packed value's share of each region: 1 within the
    region's inner radius of its nearest spanning landmark, fading to 0 at the outer
    one; the pose's values belong to none."""
    iod = max(float(np.linalg.norm(lm[EYE_L, :2].mean(0) - lm[EYE_R, :2].mean(0))), 1e-6)
    out = np.zeros((size, len(REGIONS)))
    pts = np.concatenate([lm[:, :2], vertices[:, :2]]).astype(np.float64)
    for r, (span, inner, outer) in enumerate(REGIONS):
        d = np.full(len(pts), np.inf)
        for k in span:
            d = np.minimum(d, np.linalg.norm(pts - lm[k, :2], axis=1))
        t = np.clip((outer - d / iod) / (outer - inner), 0.0, 1.0)
        share = t * t * (3 - 2 * t)
        out[: 3 * len(pts), r] = np.repeat(share, 3)  # x, y, z of each point
    return out


def _unpack(rec: Reconstruction, x: np.ndarray) -> Reconstruction:
    n_l, n_v = rec.landmarks.size, rec.vertices.size
    lm = x[:n_l].reshape(rec.landmarks.shape).astype(np.float32)
    verts = x[n_l : n_l + n_v].reshape(rec.vertices.shape).astype(np.float32)
    rest = x[n_l + n_v :]
    rot = _nearest_rotation(rest[:9].reshape(3, 3))
    pose = Pose(
        rot.astype(np.float32), rotation_to_angles(rot), float(rest[9]), rest[10:13].astype(np.float32)
    )
    return replace(rec, landmarks=lm, vertices=verts, pose=pose)


class Smoother:
    """Per-track filters made by ``filter_factory`` (norfair-style): a new track, or a
    re-acquired one (new id), starts a fresh filter; filters of tracks gone are freed."""

    def __init__(
        self, filter_factory: Callable[[], Callable[[Reconstruction, float], Reconstruction]] = OneEuroFilter
    ):
        self.filter_factory = filter_factory
        self.filters: dict[int, Callable[[Reconstruction, float], Reconstruction]] = {}

    def __call__(self, recs: list[Reconstruction], t: float) -> list[Reconstruction]:
        ids = {r.track_id for r in recs}
        for tid in [k for k in self.filters if k not in ids]:
            del self.filters[tid]
        out = []
        for r in recs:
            if r.track_id not in self.filters:
                self.filters[r.track_id] = self.filter_factory()
            out.append(self.filters[r.track_id](r, t))
        return out

    def reset(self) -> None:
        self.filters.clear()
