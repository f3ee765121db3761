"""PRNet's UV layout, built from the face model so that any resolution can be made.

A position map stores, at each UV pixel, the (x, y, z) of the face point that maps
there. Everything that reads or writes a map needs the same layout: where the 68
landmarks sit, which pixels are face, how the face pixels form a mesh, and the loss
weights. We derive it from the BFM's per-vertex UV coordinates (vertex i sits at
``uv[i] * (R - 1)``), which at R = 256 reproduces PRNet's ``uv_kpt_ind.txt`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from realtime.core.raster import cover

# Landmark groups of the 68-point scheme, for the 4x loss region.
BROW_EYE_L = list(range(17, 22)) + list(range(36, 42))
BROW_EYE_R = list(range(22, 27)) + list(range(42, 48))
NOSE = list(range(27, 36))
MOUTH = list(range(48, 60))
WEIGHT_KPT, WEIGHT_REGION, WEIGHT_FACE = 16.0, 4.0, 3.0
# Landmark k of a mirrored face is landmark MIRROR_68[k] of the original: left and
# right swap, the midline (nose bridge, lip centres) stays.
MIRROR_68 = np.array(
    [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a``, read-only: a cached array is shared by every caller."""
    a.flags.writeable = False
    return a


@dataclass
class UVLayout:
    """Everything about a position map that is not the network.

    resolution: R, the map side in pixels.
    kpt_ind: (2, 68) int, the 68 landmarks' (column, row) in the map.
    face_mask: (R, R) bool, pixels that hold face points.
    weight_mask: (R, R) float32, loss weights 16 : 4 : 3 : 0.
    triangles: (T, 3) int32, grid triangles over face pixels, indexing ``face_ind``.
    canonical: (F, 3) float32, the mean face at the face pixels (x right, y down,
        z toward the camera, ~pixels of a 256 crop), the reference for head pose.
    """

    resolution: int
    kpt_ind: np.ndarray
    face_mask: np.ndarray
    weight_mask: np.ndarray
    triangles: np.ndarray
    canonical: np.ndarray

    @cached_property  # the mask never changes; the swap reads it every frame
    def face_ind(self) -> np.ndarray:
        """(F,) flat indices of face pixels, row-major: the dense vertex order."""
        return _frozen(np.flatnonzero(self.face_mask.ravel()))

    @cached_property
    def vertex_uv(self) -> np.ndarray:
        """(F, 2) float32 texture coordinates in [0, 1] of each dense vertex."""
        rows, cols = np.divmod(self.face_ind, self.resolution)
        return _frozen((np.stack([cols, rows], 1) / (self.resolution - 1)).astype(np.float32))

    @cached_property
    def kpt_rows(self) -> np.ndarray:
        """(68,) the 68 landmarks' rows in the dense vertex order."""
        flat = self.kpt_ind[1] * self.resolution + self.kpt_ind[0]
        return _frozen(np.searchsorted(self.face_ind, flat))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "resolution": np.array(self.resolution),
            "kpt_ind": self.kpt_ind,
            "face_mask": self.face_mask,
            "weight_mask": self.weight_mask,
            "triangles": self.triangles,
            "canonical": self.canonical,
        }

    @classmethod
    def from_arrays(cls, d: dict) -> UVLayout:
        return cls(
            resolution=int(np.asarray(d["resolution"]).reshape(-1)[0]),
            kpt_ind=np.asarray(d["kpt_ind"], np.int64),
            face_mask=np.asarray(d["face_mask"], bool),
            weight_mask=np.asarray(d["weight_mask"], np.float32),
            triangles=np.asarray(d["triangles"], np.int32),
            canonical=np.asarray(d["canonical"], np.float32),
        )


def grid_triangles(face_mask: np.ndarray) -> np.ndarray:
    """Two triangles per 2x2 block of face pixels, indexing the face-pixel order (row
    by row: over an all-True mask, the vertices of a whole grid)."""
    r = face_mask.shape[0]
    index = -np.ones(face_mask.shape, np.int64)
    index[face_mask] = np.arange(face_mask.sum())
    a, b = index[:-1, :-1], index[:-1, 1:]
    c, d = index[1:, :-1], index[1:, 1:]
    t1 = np.stack([a, b, c], -1).reshape(-1, 3)
    t2 = np.stack([b, d, c], -1).reshape(-1, 3)
    tris = np.concatenate([t1[(t1 >= 0).all(1)], t2[(t2 >= 0).all(1)]])
    assert r > 1
    return tris.astype(np.int32)


@dataclass
class UVRaster:
    """Where each face pixel takes its point from: (P,) flat pixel indices, (P, 3)
    vertex ids and (P, 3) barycentric weights. Fixed for a layout, so a ground-truth
    map is a weighted gather of mesh vertices, with no per-sample rasterising."""

    pixels: np.ndarray
    vertex_ids: np.ndarray
    weights: np.ndarray


def rasterise(uv: np.ndarray, triangles: np.ndarray, resolution: int) -> UVRaster:
    uvp = (uv.astype(np.float64) * (resolution - 1)).copy()
    flat = np.zeros(len(uvp), np.float64)  # one plane: the last triangle over an edge takes it
    _, tri_id, bary = cover(uvp, flat, triangles, (resolution, resolution), tol=1e-6, ties_to_later=True)
    pixels = np.flatnonzero(tri_id.ravel() >= 0)
    ids = triangles[tri_id.ravel()[pixels]]
    return UVRaster(pixels, ids.astype(np.int64), bary.astype(np.float32).reshape(-1, 3)[pixels])


def bfm_shape(bfm: dict, coeffs: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) BFM vertices in model units (y up) for shape+expression coefficients."""
    s = bfm["mean"].astype(np.float64)
    if coeffs is not None:
        s = s + bfm["shape_basis"] @ coeffs[:40] + bfm["exp_basis"] @ coeffs[40:]
    return s.reshape(-1, 3)


def _region_mask(kpt_px: np.ndarray, res: int) -> np.ndarray:
    """Eyes, nose and mouth: the dilated hulls of their landmarks in UV space."""
    mask = np.zeros((res, res), np.uint8)
    grow = max(1, round(res / 25))  # about as generous as PRNet's own mask
    for group in (BROW_EYE_L, BROW_EYE_R, NOSE, MOUTH):
        hull = cv2.convexHull(kpt_px[group].astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return cv2.dilate(mask, np.ones((2 * grow + 1,) * 2, np.uint8)) > 0


def _snap_to_face(points: np.ndarray, face_mask: np.ndarray) -> np.ndarray:
    """Round (K, 2) UV points to pixels, moving any that fall off the face (which
    happens on the jaw line at low resolution) to the nearest face pixel."""
    px = np.round(points).astype(np.int64)
    rows, cols = np.nonzero(face_mask)
    for i, (c, r) in enumerate(px):
        if not face_mask[r, c]:
            j = np.argmin((cols - points[i, 0]) ** 2 + (rows - points[i, 1]) ** 2)
            px[i] = cols[j], rows[j]
    return px


def build_layout(bfm: dict, resolution: int) -> tuple[UVLayout, UVRaster]:
    """The layout at ``resolution`` and its raster (for ground truth)."""
    raster = rasterise(bfm["uv"], bfm["triangles"], resolution)
    face_mask = np.zeros(resolution * resolution, bool)
    face_mask[raster.pixels] = True
    face_mask = face_mask.reshape(resolution, resolution)
    kpt_px = _snap_to_face(bfm["uv"][bfm["kpt_ind"]] * (resolution - 1), face_mask)
    weight = np.where(face_mask, WEIGHT_FACE, 0.0).astype(np.float32)
    weight[_region_mask(kpt_px, resolution) & face_mask] = WEIGHT_REGION
    weight[kpt_px[:, 1], kpt_px[:, 0]] = WEIGHT_KPT
    # Canonical face: the mean shape in image-like axes (x right, y down, z to camera),
    # scaled to about the size of a face in a 256 crop.
    mean = bfm_shape(bfm) * np.array([1.0, -1.0, 1.0])
    mean = mean - mean.mean(0)
    mean *= 180.0 / np.ptp(mean[:, 0])
    face_pts = (mean[raster.vertex_ids] * raster.weights[..., None]).sum(1)
    layout = UVLayout(
        resolution=resolution,
        kpt_ind=kpt_px.T.copy(),
        face_mask=face_mask,
        weight_mask=weight,
        triangles=grid_triangles(face_mask),
        canonical=face_pts.astype(np.float32),
    )
    return layout, raster


def mirror_vertices(bfm: dict) -> np.ndarray:
    """(N,) int: the vertex on the other side of the face from each vertex.

    PRNet's UV layout is mirror-symmetric (u -> 1 - u), so the partner is the vertex at
    the mirrored UV point; 99 % match exactly, the rest to 0.02 of the map. The 68
    landmark vertices are paired by the landmark scheme instead, so that a mirrored
    face's landmarks are exactly the labelled ones, swapped."""
    # a compiled class, re-exported by a star import that pyright cannot follow
    from scipy.spatial import cKDTree  # pyright: ignore[reportAttributeAccessIssue]

    uv = bfm["uv"].astype(np.float64)
    _, partner = cKDTree(uv).query(np.stack([1.0 - uv[:, 0], uv[:, 1]], 1))
    kpt = np.asarray(bfm["kpt_ind"], np.int64)
    partner[kpt] = kpt[MIRROR_68]
    return partner.astype(np.int64)


def load_bfm(path: str | Path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
