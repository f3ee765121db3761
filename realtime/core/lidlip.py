"""The lid and lip warp: moving a fitted mesh's lids and lips to new control points.

Expression labels (``realtime.train.expression``) give each training crop new image
positions for its eyes' and lips' 32 points of the 68 scheme (``CONTROLS``); this
module spreads those moves over the mesh, so the position map's lids and lips follow
them and the cheeks, brows and nose stay. The decoder (realtime.live.decode) uses the
same warp on the live mesh, built on the UV layout's mean face, to move the lids to a
lid head's openings.
"""

from __future__ import annotations

import numpy as np

from realtime.core.landmarks import EYE_L, EYE_R, LIPS, MOUTH_IN
from realtime.core.uv import UVLayout, bfm_shape

#: The 68-scheme points the labels move: both eyes' six, the outer and inner lips.
CONTROLS = np.array(EYE_L + EYE_R + LIPS + MOUTH_IN)


def _polyline(x: np.ndarray, px: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each ``x`` on a polyline with vertices at ``px`` (ascending): the segment's
    two vertex indices and the weight of the second (x is clipped to the ends)."""
    x = np.clip(x, px[0], px[-1])
    j = np.clip(np.searchsorted(px, x) - 1, 0, len(px) - 2)
    s = (x - px[j]) / np.maximum(px[j + 1] - px[j], 1e-9)
    return j, j + 1, s


def _fade(d: np.ndarray) -> np.ndarray:
    """1 at 0, 0 at 1 and beyond, smooth between."""
    t = np.clip(1.0 - d, 0.0, 1.0)
    return t * t * (3 - 2 * t)


class LidLipWarp:
    """A fixed linear map from the 32 control points' image displacements to every
    mesh vertex's: ``vertices[:, rows] += weights @ offsets``.

    Built on the mean face, seen from the front, per feature: an eye's upper lid line
    (its corners and two upper points) and lower lid line, the mouth's four lip lines.
    A vertex between two lines of a feature takes the two lines' displacements at its x
    (each line's own, interpolated between its control points), mixed by where it sits
    between them; a vertex beyond the outer lines takes the nearer line's, faded out
    over a band (the lid fold above an eye, the cheek below, the nose and the chin
    beyond the lips). So a lid that closes carries the skin between the lines with it,
    and the brow, the cheek and the nose stay."""

    def __init__(self, x: np.ndarray, y: np.ndarray, kpt: np.ndarray):
        """``x``, ``y``: (N,) a mean face's vertices seen from the front (y up, any
        unit); ``kpt``: (68,) the 68 landmarks' vertex indices."""
        self.kpt = kpt = np.asarray(kpt)
        col = {int(k): i for i, k in enumerate(CONTROLS)}
        w = np.zeros((len(x), len(CONTROLS)), np.float64)
        for eye in (EYE_L, EYE_R):  # 36 37 38 39 upper, 39 40 41 36 lower
            c0, u1, u2, c3, l4, l5 = eye
            lines = [[c0, u1, u2, c3], [c0, l5, l4, c3]]
            width = float(x[kpt[c3]] - x[kpt[c0]])
            self._feature(w, x, y, kpt, col, lines, width, above=0.45, below=0.35, side=0.3)
        upper_out = list(range(48, 55))
        upper_in = [48, 60, 61, 62, 63, 64, 54]  # the inner lines end at the outer corners
        lower_in = [48, 60, 67, 66, 65, 64, 54]
        lower_out = [48, 59, 58, 57, 56, 55, 54]
        width = float(x[kpt[54]] - x[kpt[48]])
        self._feature(
            w,
            x,
            y,
            kpt,
            col,
            [upper_out, upper_in, lower_in, lower_out],
            width,
            above=0.35,
            below=0.6,
            side=0.25,
        )
        rows = np.flatnonzero(np.abs(w).sum(1) > 1e-6)
        self.rows = rows
        self.weights = w[rows].astype(np.float32)  # (V, 32)

    @classmethod
    def from_bfm(cls, bfm: dict) -> LidLipWarp:
        """On the face model's vertices (the training maps' mesh)."""
        mean = bfm_shape(bfm)  # model units, y up
        return cls(mean[:, 0], mean[:, 1], bfm["kpt_ind"])

    @classmethod
    def from_layout(cls, layout: UVLayout) -> LidLipWarp:
        """On a UV layout's face pixels (the decoder's vertices, in ``face_ind`` order)."""
        flat = layout.kpt_ind[1] * layout.resolution + layout.kpt_ind[0]
        rows = np.searchsorted(layout.face_ind, flat)
        return cls(layout.canonical[:, 0], -layout.canonical[:, 1], rows)  # canonical: y down

    @staticmethod
    def _feature(
        w: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        kpt: np.ndarray,
        col: dict[int, int],
        lines: list[list[int]],
        width: float,
        above: float,
        below: float,
        side: float,
    ) -> None:
        """Fill ``w`` for one feature's lines, top to bottom (each left to right)."""
        lx = [x[kpt[line]] for line in lines]
        x0, x1 = lx[0][0], lx[0][-1]
        near = (x > x0 - side * width) & (x < x1 + side * width)
        ys = [np.interp(x, lx[i], y[kpt[line]]) for i, line in enumerate(lines)]
        top = ys[0] + above * width
        bottom = ys[-1] - below * width
        inside = near & (y < top) & (y > bottom)
        sidefade = _fade(np.maximum(np.maximum(x0 - x, x - x1), 0) / (side * width))

        def line_weights(i: int, vid: np.ndarray, scale: np.ndarray) -> None:
            j0, j1, s = _polyline(x[vid], lx[i])
            line = np.asarray(lines[i])
            for j, share in ((j0, 1 - s), (j1, s)):
                cols = np.array([col[int(k)] for k in line[j]], np.int64)
                np.add.at(w, (vid, cols), share * scale)

        for v_set, i, dist in (
            (inside & (y > ys[0]), 0, (y - ys[0]) / (above * width)),
            (inside & (y < ys[-1]), len(lines) - 1, (ys[-1] - y) / (below * width)),
        ):
            vid = np.flatnonzero(v_set)
            line_weights(i, vid, (_fade(dist) * sidefade)[vid])
        for i in range(len(lines) - 1):  # between two lines: mixed by position (a vertex on
            last = i == len(lines) - 2  # a line belongs to the interval below it)
            between = inside & (y <= ys[i]) & ((y >= ys[i + 1]) if last else (y > ys[i + 1]))
            vid = np.flatnonzero(between)
            t = ((ys[i] - y) / np.maximum(ys[i] - ys[i + 1], 1e-9))[vid]
            line_weights(i, vid, (1 - t) * sidefade[vid])
            line_weights(i + 1, vid, t * sidefade[vid])

    def landmark_check(self) -> float:
        """Largest deviation from 1 of a control vertex's weight on its own control
        (each should follow its own point exactly)."""
        pos = {int(v): r for r, v in enumerate(self.rows)}
        return max(abs(self.weights[pos[int(self.kpt[k])], i] - 1.0) for i, k in enumerate(CONTROLS))
