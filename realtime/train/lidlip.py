"""The lid and lip warp: moving a fitted mesh's lids and lips to new control points.

Expression labels (``realtime.train.expression``) give each training crop new image
positions for its eyes' and lips' 32 points of the 68 scheme (``CONTROLS``); this
module spreads those moves over the mesh, so the position map's lids and lips follow
them and the cheeks, brows and nose stay.
"""

from __future__ import annotations

import numpy as np

from realtime.core.landmarks import EYE_L, EYE_R, LIPS, MOUTH_IN
from realtime.core.uv import bfm_shape

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

    def __init__(self, bfm: dict):
        mean = bfm_shape(bfm)  # model units, y up
        x, y = mean[:, 0], mean[:, 1]
        kpt = np.asarray(bfm["kpt_ind"])
        col = {int(k): i for i, k in enumerate(CONTROLS)}
        n = len(mean)
        w = np.zeros((n, len(CONTROLS)), np.float64)
        for eye in (EYE_L, EYE_R):  # 36 37 38 39 upper, 39 40 41 36 lower
            c0, u1, u2, c3, l4, l5 = eye
            lines = [[c0, u1, u2, c3], [c0, l5, l4, c3]]
            width = x[kpt[c3]] - x[kpt[c0]]
            self._feature(w, x, y, kpt, col, lines, width, above=0.45, below=0.35, side=0.3)
        upper_out = list(range(48, 55))
        upper_in = [48, 60, 61, 62, 63, 64, 54]  # the inner lines end at the outer corners
        lower_in = [48, 60, 67, 66, 65, 64, 54]
        lower_out = [48, 59, 58, 57, 56, 55, 54]
        width = x[kpt[54]] - x[kpt[48]]
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
            np.add.at(w, (vid, [col[int(k)] for k in line[j0]]), (1 - s) * scale)
            np.add.at(w, (vid, [col[int(k)] for k in line[j1]]), s * scale)

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

    def landmark_check(self, bfm: dict) -> float:
        """Largest deviation from 1 of a control vertex's weight on its own control
        (each should follow its own point exactly)."""
        kpt = np.asarray(bfm["kpt_ind"])
        pos = {int(v): r for r, v in enumerate(self.rows)}
        return max(abs(self.weights[pos[int(kpt[k])], i] - 1.0) for i, k in enumerate(CONTROLS))
