"""Seamless edges for the face swap: a gradient-domain (Poisson-style) correction.

Why: however well the light is matched, the source's skin is not the live skin, so
where the swap meets the frame there is a step in colour. Poisson cloning removes it
by keeping the pasted face's gradients and taking its boundary values from the
frame; the difference it adds is a membrane (harmonic) function that carries the
boundary difference smoothly into the face. We solve for that difference directly,
as a log gain per colour channel, on a coarse grid over UV space (16 x 16 cells, a
~130-unknown dense system, a fraction of a millisecond): the swap's own light model
predicts its colour at skin samples in the blend band, the frame says what is there,
and the membrane fills the inside. In UV space the solution moves with the face, and
it is smoothed per track, so it adds no flicker.

The inner skin (cheeks, forehead, chin: not the features, not the live eyes and mouth)
pulls too, more weakly (INNER_PULL against PULL): a membrane from the edge alone left a
source darker or lighter than the live face so inside, and the swapped cheeks 3-8 CIE
Lab units from the live ones (carphone and hamilton at 1280x720, the four portraits;
1.5-6.3 with the pull). At 16 x 16 cells it matches the tone, not the detail. Every cell
is also pulled toward the inner skin's mean gain (PRIOR), so the edge's own errors (a
shadowed jaw, background where the mesh overhangs) stay near the edge: the kpa webcam's
self-swap was drawn 5 levels of L darker than the frame, mostly the ring's doing.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from realtime.core.types import Reconstruction
from realtime.core.uv import UVLayout
from realtime.render.lighting import MeshNormals, pixels_at, shade, to_linear
from realtime.render.tracks import TrackMemory

GRID = 16  # cells per UV side; texel k sits at layout uv k / (GRID - 1)
BAND = (0.2, 0.97)  # region alpha of the skin sampled for the boundary values
MAX_LOG_GAIN = 0.7  # a boundary gain beyond e^+-0.7 is an occluder or background, not skin
PULL = 4.0  # weight of a fully seen ring cell's boundary value against smoothness
INNER_PULL = 0.5  # weight of an inner skin cell's value (0: the inside is the membrane alone)
INNER_STEP = 3  # inner samples: every 3rd layout vertex across and down (about 580, not 5,200)
# Pull of every cell toward the inner skin's mean gain (keeps the system regular, and
# keeps the edge's pull from reaching far into the face: the ring reads the frame darker
# where the jaw is shadowed or the mesh overhangs, which the face's inside does not ask).
PRIOR = 0.3
SMOOTHING = 0.3  # weight of the newest frame in a track's running correction


class Seam:
    """The per-face correction: ``update(image, rec, light, normals)`` -> (GRID, GRID,
    3) float32 log gain, for the swap shader's ``u_seam`` texture. ``skin`` (S, S) bool,
    the region's plain skin: its inner samples pull at INNER_PULL (None: the edge's
    only)."""

    def __init__(
        self,
        layout: UVLayout,
        region: np.ndarray,
        exclude: np.ndarray,
        normals: MeshNormals,
        skin: np.ndarray | None = None,
    ):
        size = region.shape[0]
        self.normals = normals
        k = (np.arange(GRID) * (size - 1) / (GRID - 1)).astype(np.float32)
        centre = cv2.remap(region.astype(np.float32), *np.meshgrid(k, k), cv2.INTER_LINEAR)
        # Unknowns: cells the face region reaches, and their neighbours (so bilinear
        # lookups near the edge stay defined).
        reach = cv2.dilate((centre > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        self.cells = np.flatnonzero(reach.ravel())
        index = -np.ones(GRID * GRID, np.int64)
        index[self.cells] = np.arange(len(self.cells))
        n = len(self.cells)
        lap = np.zeros((n, n))
        grid_index = index.reshape(GRID, GRID)
        for a, b in (
            (grid_index[:, :-1], grid_index[:, 1:]),
            (grid_index[:-1, :], grid_index[1:, :]),
        ):
            ok = (a >= 0) & (b >= 0)
            i, j = a[ok], b[ok]
            np.add.at(lap, (i, i), 1.0)
            np.add.at(lap, (j, j), 1.0)
            np.add.at(lap, (i, j), -1.0)
            np.add.at(lap, (j, i), -1.0)
        self.lap = lap
        # Every texel of the correction texture takes its nearest unknown cell.
        _, labels = cv2.distanceTransformWithLabels(
            (~reach).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
        )
        self.fill = labels.ravel() - 1  # zero pixels are numbered in scan order, as self.cells
        # Boundary samples: dense vertices in the blend band, on skin, and their cells.
        uv = layout.vertex_uv
        px = np.round(uv * (size - 1)).astype(np.int64)
        alpha = region[px[:, 1], px[:, 0]]
        band = (alpha > BAND[0]) & (alpha < BAND[1]) & ~exclude[px[:, 1], px[:, 0]]
        inner = np.zeros_like(band)
        if skin is not None and INNER_PULL > 0:
            inner = (alpha >= BAND[1]) & skin[px[:, 1], px[:, 0]] & ~exclude[px[:, 1], px[:, 0]]
            lattice = np.round(uv * (layout.resolution - 1)).astype(np.int64) % INNER_STEP == 0
            inner &= lattice.all(1)  # a few per cell is enough: every INNER_STEP-th vertex
        cell = np.round(uv * (GRID - 1)).astype(np.int64)
        flat = cell[:, 1] * GRID + cell[:, 0]
        use = (band | inner) & (index[flat] >= 0)
        self.rows = np.flatnonzero(use)
        self.inner = inner[self.rows]  # which samples are inner skin (the rest: the ring)
        self.sample_cell = index[flat[self.rows]]
        in_ring = np.bincount(index[flat[band & use]], minlength=n) > 0
        # Cells with boundary samples hold a value (pulled to this frame's data, or to
        # their last value where the frame has none: turned away, covered); the rest
        # is the membrane between them. The system is fixed, so it is inverted once
        # and a frame costs a matrix product.
        held = np.bincount(self.sample_cell, minlength=n) > 0
        pull = np.where(in_ring, PULL, INNER_PULL * held)
        self.solver = np.linalg.inv(lap + np.diag(pull) + PRIOR * np.eye(n))
        self.pull = pull
        self.n = n
        self.grid = GRID
        self.tracks = TrackMemory()

    def fresh(self) -> Seam:
        """A seam sharing this one's solver and samples with no faces yet (previews)."""
        twin = copy.copy(self)
        twin.tracks = TrackMemory()
        return twin

    def update(
        self, image: np.ndarray, rec: Reconstruction, light: np.ndarray, albedo: np.ndarray, cover: np.ndarray
    ) -> np.ndarray:
        """This face's correction: ``albedo`` (K, 3) linear BGR and ``cover`` (K,) in
        [0, 1] are the swap texture's at the boundary samples (self.rows)."""
        v = rec.vertices
        pix, usable = pixels_at(image, v[self.rows, :2])
        n = self.normals(v, self.rows)
        predicted = albedo * shade(light, n)
        d = np.log(to_linear(pix) + 2e-3) - np.log(predicted + 2e-3)
        wt = usable * cover * np.clip((n[:, 2] - 0.15) / 0.3, 0.0, 1.0)
        wt = wt * (np.abs(d) < MAX_LOG_GAIN).all(1)
        cnt = np.bincount(self.sample_cell, weights=wt, minlength=self.n)
        total = np.stack(
            [np.bincount(self.sample_cell, weights=wt * d[:, c], minlength=self.n) for c in range(3)], 1
        )
        old = self.tracks.get(rec.track_id)
        if cnt.sum() < 5:
            return self._texture(old if old is not None else np.zeros((self.n, 3)))
        w_in = wt * self.inner  # the inner skin's mean, where it is seen; else every sample's
        seen_in = w_in.sum()
        mean = (w_in @ d) / seen_in if seen_in >= 5 else total.sum(0) / cnt.sum()
        data = total / np.maximum(cnt, 1e-9)[:, None]
        # A cell's certainty grows with its weight of samples; where it has little, the
        # last value (or the mean, for a new face) stands in.
        sure = np.minimum(cnt / 3.0, 1.0)[:, None]
        fallback = old if old is not None else np.broadcast_to(mean, data.shape)
        target = sure * data + (1 - sure) * fallback
        gain = self.solver @ (self.pull[:, None] * target + PRIOR * mean[None])
        if old is not None:
            gain = old + SMOOTHING * (gain - old)
        self.tracks.put(rec.track_id, gain)
        return self._texture(gain)

    def _texture(self, gain: np.ndarray) -> np.ndarray:
        return gain[self.fill].reshape(GRID, GRID, 3).astype(np.float32)
