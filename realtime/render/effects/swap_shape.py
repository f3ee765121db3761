"""The face swap's shape (``--swap-shape S``): the live mesh moved toward the source's
face shape, while the lids and lips stay the live face's.

Why the lids and lips are kept out: the source's shape is its photo's mesh, so it
holds the photo's expression as well as its identity. Moved whole onto the live face,
a photo's open smile or narrowed eyes would be drawn over a live face that talks and
blinks differently: the source's lips would not follow the live lips, and its lids
would not close with the live lids. So around the eyes and the lips the shape's
offset is not the source's own but a smooth (harmonic) fill from the skin around
them: there the drawn mesh is the live mesh, moved with its surroundings, so the
live contours (and the opening between the lips, where the live mouth shows) are
drawn where the live face has them, and the source's texture rides on them.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from realtime.core.landmarks import EYE_L, EYE_R, LIPS
from realtime.core.types import Reconstruction
from realtime.core.uv import UVLayout
from realtime.render.effects.uvdraw import inner_distance, smoothstep, uv_landmarks
from realtime.render.tracks import TrackMemory

NEUTRAL_RATE = 0.05  # weight of the newest frame in a track's running neutral mesh
LID_GROW = 0.05  # the lids' zone: the eye contour grown by this (x the layout's side): lid and crease
LIP_GROW = 0.035  # the lips' zone: the outer lip contour grown by this (x the layout's side)
_FILLS: dict[int, tuple[UVLayout, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}


def pose_free(rec: Reconstruction) -> np.ndarray:
    """(F, 3) float64 the mesh in the face's own frame: the head pose's similarity
    (frame = scale * rotation @ canonical + translation) undone."""
    p = rec.pose
    return (rec.vertices.astype(np.float64) - p.translation) @ p.rotation.astype(np.float64) / p.scale


def warp_weight(layout: UVLayout, width: float = 0.06) -> np.ndarray:
    """(F,) per vertex in [0, 1]: how much the face shape moves it, 1 inside the face and
    easing to 0 over ``width`` (x the layout's side) at the mesh's outer edge, so the
    warped frame meets the unwarped one without a step."""
    dist = inner_distance(layout.face_mask).ravel()[layout.face_ind] - 1.0
    return smoothstep(0.0, width * layout.resolution, dist).astype(np.float64)


def expression_zone(layout: UVLayout) -> np.ndarray:
    """(F,) bool: the vertices of the lids (each eye's contour grown by LID_GROW) and of
    the lips (their outer contour grown by LIP_GROW), whose shape the live face keeps."""
    r = layout.resolution
    k = uv_landmarks(layout, r)
    zone = np.zeros((r, r), np.uint8)
    for group, grow in ((EYE_L, LID_GROW), (EYE_R, LID_GROW), (LIPS, LIP_GROW)):
        hull = np.zeros((r, r), np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(k[group]).astype(np.int32)), 1)
        g = int(round(grow * r)) * 2 + 1
        zone |= cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (g, g)))
    return zone.ravel()[layout.face_ind] > 0


def harmonic_fill(layout: UVLayout, zone: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(zone rows Z, ring rows B, (|Z|, |B|) weights W): a per-vertex field f filled
    inside ``zone`` from its ring (the face vertices beside it) as the harmonic
    function (the membrane) is f[Z] = W @ f[B]. The layout's grid Laplacian over the
    face vertices (4-neighbours; the mouth's hole has none, so the fill goes round it)."""
    r = layout.resolution
    index = -np.ones(r * r, np.int64)
    index[layout.face_ind] = np.arange(len(layout.face_ind))
    grid = index.reshape(r, r)
    pairs = []
    for a, b in ((grid[:, :-1], grid[:, 1:]), (grid[:-1, :], grid[1:, :])):
        ok = (a >= 0) & (b >= 0)
        pairs.append(np.stack([a[ok], b[ok]], 1))
    edges = np.concatenate(pairs)
    edges = edges[zone[edges[:, 0]] | zone[edges[:, 1]]]  # only edges touching the zone matter
    rows = np.flatnonzero(zone)
    ring = np.unique(edges[~zone[edges]])
    at = -np.ones(len(zone), np.int64)
    at[rows] = np.arange(len(rows))
    at[ring] = np.arange(len(ring))
    lap = np.zeros((len(rows), len(rows)))
    rhs = np.zeros((len(rows), len(ring)))
    for p, q in (edges.T, edges[:, ::-1].T):  # each edge seen from both ends
        inside = zone[p]
        np.add.at(lap, (at[p[inside]], at[p[inside]]), 1.0)
        both = inside & zone[q]
        np.add.at(lap, (at[p[both]], at[q[both]]), -1.0)
        out = inside & ~zone[q]
        np.add.at(rhs, (at[p[out]], at[q[out]]), 1.0)
    weights = np.linalg.solve(lap, rhs)
    return rows, ring, weights.astype(np.float64)


class FaceShape:
    """Moves live meshes toward one source's shape: ``vertices(rec, amount)``. Kept per
    track: the live face's running neutral (pose-free) mesh, so the offset it adds is
    the source's shape against the live person's, not against this frame's expression."""

    def __init__(self, layout: UVLayout):
        self.layout = layout
        self.weight = warp_weight(layout)
        held = _FILLS.get(id(layout))
        if held is None or held[0] is not layout:  # made once per layout: every swap shares it
            held = _FILLS[id(layout)] = (layout, harmonic_fill(layout, expression_zone(layout)))
        self.zone, self.ring, self.fill = held[1]
        self.source: np.ndarray | None = None
        self.neutral = TrackMemory()

    def fresh(self) -> FaceShape:
        """A copy sharing the source and the fill, with no tracks yet (previews, variants)."""
        twin = copy.copy(self)
        twin.neutral = TrackMemory()
        return twin

    def set_source(self, rec: Reconstruction) -> None:
        self.source = pose_free(rec)
        self.neutral.clear()

    def offset(self, rec: Reconstruction) -> np.ndarray:
        """(F, 3) frame pixels: the source's shape minus this track's neutral one, in the
        live pose, the lids and lips filled from around them, easing to nothing at the
        mesh's outer edge."""
        assert self.source is not None, "set_source first"
        d = self.source - self.neutral.smooth(rec.track_id, pose_free(rec), NEUTRAL_RATE)
        d[self.zone] = self.fill @ d[self.ring]
        d = d @ rec.pose.rotation.T.astype(np.float64)
        return d * (self.weight[:, None] * rec.pose.scale)

    def vertices(self, rec: Reconstruction, amount: float) -> np.ndarray:
        """(F, 3) float32 the live mesh moved ``amount`` (S) of the way to the source's shape."""
        return (rec.vertices + amount * self.offset(rec)).astype(np.float32)
