"""One triangle rasteriser for every mesh drawn on the CPU: the UV layout's pixels
(which triangle of the face model covers each map pixel, realtime.core.uv) and the
offline renderings of training (turned faces, occluder footprints).

Orthographic and exact: pixel centres sit at integer coordinates, a pixel belongs to
a triangle when its barycentric weights are all above ``-tol``, and the nearest
triangle (largest z) wins; ``ties_to_later`` lets a later triangle take a pixel at the
same depth (the layout's flat z = 0 mesh: the last triangle over a shared edge).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _cover(xy, z, tris, tol, ties_to_later, zbuf, tri_id, bary):  # pragma: no cover - compiled
    h, w = zbuf.shape
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        x0, y0, x1, y1, x2, y2 = xy[a, 0], xy[a, 1], xy[b, 0], xy[b, 1], xy[c, 0], xy[c, 1]
        den = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        if abs(den) < 1e-12:
            continue
        cmin = max(int(np.ceil(min(x0, x1, x2))), 0)
        cmax = min(int(np.floor(max(x0, x1, x2))), w - 1)
        rmin = max(int(np.ceil(min(y0, y1, y2))), 0)
        rmax = min(int(np.floor(max(y0, y1, y2))), h - 1)
        for r in range(rmin, rmax + 1):
            for col in range(cmin, cmax + 1):
                w0 = ((y1 - y2) * (col - x2) + (x2 - x1) * (r - y2)) / den
                w1 = ((y2 - y0) * (col - x2) + (x0 - x2) * (r - y2)) / den
                w2 = 1.0 - w0 - w1
                if w0 < -tol or w1 < -tol or w2 < -tol:
                    continue
                zz = w0 * z[a] + w1 * z[b] + w2 * z[c]
                if zz > zbuf[r, col] or (ties_to_later and zz == zbuf[r, col]):
                    zbuf[r, col] = zz
                    tri_id[r, col] = t
                    bary[r, col, 0] = w0
                    bary[r, col, 1] = w1
                    bary[r, col, 2] = w2


def cover(
    xy: np.ndarray,
    z: np.ndarray,
    tris: np.ndarray,
    shape: tuple[int, int],
    zbuf: np.ndarray | None = None,
    tol: float = 1e-7,
    ties_to_later: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the triangles ``tris`` (T, 3) of the points ``xy`` (N, 2) at depths ``z``
    (N,) over ``zbuf`` ((H, W), -inf where empty; drawn over in place when given).
    Returns the z-buffer, (H, W) int32 the triangle each pixel took from this mesh
    (-1: none, or a nearer surface drawn before) and (H, W, 3) float64 its barycentric
    weights."""
    zbuf = np.full(shape, -np.inf, z.dtype if z.dtype.kind == "f" else np.float32) if zbuf is None else zbuf
    tri_id = -np.ones(shape, np.int32)
    bary = np.zeros((*shape, 3), np.float64)
    _cover(xy, z, np.ascontiguousarray(tris, np.int64), tol, ties_to_later, zbuf, tri_id, bary)
    return zbuf, tri_id, bary


def rasterise(
    xy: np.ndarray,
    z: np.ndarray,
    tris: np.ndarray,
    shape: tuple[int, int],
    attr: np.ndarray | None = None,
    zbuf: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 z-buffer (-inf where empty) and (H, W, C) float32 per-vertex
    attributes ``attr`` (N, C) interpolated over a triangle mesh (screen-linear, exact
    for an orthographic view), drawn over ``zbuf`` and ``out`` in place when given."""
    attr = np.zeros((len(xy), 0), np.float32) if attr is None else np.ascontiguousarray(attr, np.float32)
    zbuf = np.full(shape, -np.inf, np.float32) if zbuf is None else zbuf
    out = np.zeros((*shape, attr.shape[1]), np.float32) if out is None else out
    xy32, z32 = np.ascontiguousarray(xy, np.float32), np.ascontiguousarray(z, np.float32)
    _, tri_id, bary = cover(xy32, z32, tris, shape, zbuf)
    won = tri_id >= 0
    if attr.shape[1] and won.any():
        corners = attr[np.asarray(tris)[tri_id[won]]]  # (P, 3, C)
        out[won] = np.einsum("pk,pkc->pc", bary[won], corners)
    return zbuf, out
