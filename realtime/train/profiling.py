"""Face profiling (3DDFA, Zhu et al. 2016): large-pose training crops made from our fits.

The lite model is worst on faces turned beyond 60 degrees, a fifth of AFLW's crops.
300W-LP, PRNet's training set, was made by turning faces with their fitted, textured
3D mesh; we do the same with our 3DMM fits. The fit's mesh takes its texture from the
crop (each vertex the pixel it lies on) and turns about the head's centre by a
similarity; the crop around it becomes a 2.5D mesh, a vertex per pixel, whose depth
continues the face's and falls back toward the head's centre (hair, ears, neck), and
follows the turn with a weight that fades to zero, so the background stays where it is,
as it would while a head turns in front of a camera. A z-buffer rasteriser (Numba)
draws both. The turned fit is the same similarity applied to the fit's parameters, so
the label map comes from the existing ``MapMaker`` and lands where the face is drawn.
Faces turn away from the camera (toward the side they already show), never back: that
would need texture the crop does not have.

``python -m realtime.train.profiling build`` caches N turned copies of every crop under
``~/.cache/prnet-live/profiled/``; ``python -m realtime.train --profiled P`` mixes them in.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.core.paths import CACHE
from realtime.core.paths import SHARED_DATA as DEFAULT_DATA
from realtime.core.raster import rasterise
from realtime.core.uv import grid_triangles, load_bfm
from realtime.live.decode import angles_to_rotation, rotation_to_angles
from realtime.train.groundtruth import CROP, TrainSet, landmarks_2d, load_trainset

CACHE_DIR = CACHE / "profiled"
VERSION = 2  # of the renderer: part of the cache's name, so a change rebuilds it
# Model space (1-based crop pixels, y up) -> image axes (0-based, y down): v = FLIP v + ORIGIN.
FLIP = np.diag([1.0, -1.0, 1.0])
ORIGIN = np.array([-1.0, CROP, -1.0])


@dataclass
class Turn:
    """How far to turn a face, in degrees, in the decoder's convention (rot = Rz(roll)
    Ry(yaw) Rx(pitch), image axes): yaw and pitch are added, roll is kept."""

    yaw: float
    pitch: float = 0.0


@dataclass
class Profiled:
    """image: (120, 120, 3) uint8, the turned crop; xform: (3, 4) image-axes similarity
    [A | b] that turned the fit (``turn_params``); source_xy: (120, 120, 2) float32, the
    source crop's pixel shown at each output pixel; face: (120, 120) float32, 1 where
    the fit's face is drawn (both for tests and the contact sheet)."""

    image: np.ndarray
    xform: np.ndarray
    source_xy: np.ndarray
    face: np.ndarray


def turn_params(params: np.ndarray, xform: np.ndarray) -> np.ndarray:
    """(M, 62) fits turned by (M, 3, 4) image-axes similarities: the label of a profiled
    sample. Kept apart from the image so that any later relabelling of the source fits
    (``--human-refit``) carries over to their profiled copies."""
    p = np.asarray(params, np.float64).copy()
    a, b = xform[..., :3], xform[..., 3]
    am = FLIP @ a @ FLIP  # the same linear map in model axes
    pm = p[:, :12].reshape(-1, 3, 4)
    lin = am @ pm[..., :3]
    t = np.einsum("mij,mj->mi", am, pm[..., 3]) + (np.einsum("mij,j->mi", a, ORIGIN) + b - ORIGIN) @ FLIP
    p[:, :12] = np.concatenate([lin, t[..., None]], -1).reshape(-1, 12)
    return p.astype(np.float32)


def turn_offsets(offsets: np.ndarray, xform: np.ndarray) -> np.ndarray:
    """(M, K, 2) image displacements (expression labels' lid and lip moves) carried
    through (M, 3, 4) image-axes similarities: a move in the image plane of the face
    turns and scales with it (its depth part, unknown, taken as 0)."""
    return np.einsum("mij,mkj->mki", xform[:, :2, :2], offsets).astype(np.float32)


def fit_rotation(params: np.ndarray) -> np.ndarray:
    """The fit's head rotation in image axes: the rotation nearest its 3x3 (3DDFA's
    regressor does not keep it exactly orthogonal), for the decoder's Euler angles."""
    u, _, vt = np.linalg.svd(np.asarray(params[:12], np.float64).reshape(3, 4)[:, :3])
    return FLIP @ (u @ vt) @ FLIP


def pick_turn(
    yaw0: float, rng: np.random.Generator, max_turn: float = 75.0, max_yaw: float = 85.0, pitch: float = 10.0
) -> Turn:
    """A turn away from the camera: toward the side the face already shows (either
    side when it looks straight ahead), by 15-75 degrees, ending by ``max_yaw``, plus
    up to +-``pitch``. Turning toward frontal would show what the crop hides."""
    sign = np.sign(yaw0) if abs(yaw0) > 5 else rng.choice([-1.0, 1.0])
    hi = min(abs(yaw0) + max_turn, max_yaw)
    lo = min(abs(yaw0) + 15.0, hi)
    target = rng.uniform(lo, hi) if hi > lo else hi
    return Turn(float(sign * max(target - abs(yaw0), 0.0)), float(rng.uniform(-pitch, pitch)))


class FaceProfiler:
    """Turns training crops; one per process (it holds the face model).

    ``fine``: drawn at fine times the crop's size, then area-averaged, so a face
    squeezed by a turn keeps its detail instead of aliasing; the surroundings are a
    mesh with a vertex per crop pixel (they only stretch or stay). ``pad``: pixels of
    mirrored border around the crop, so the band around a face near the edge has
    somewhere to come from. ``band``: how far (as a share of the face's size) the head
    around the face turns with it, fading to the fixed background; ``depth_fall``: how
    fast the extrapolated depth falls back to the head's centre (hair and ears curve
    away from the camera); ``edge``: the smoothing of that depth, in pixels."""

    def __init__(
        self,
        bfm: dict,
        fine: int = 2,
        pad: int = 16,
        band: float = 0.3,
        depth_fall: float = 0.25,
        edge: float = 1.5,
    ):
        self.mean = bfm["mean"].astype(np.float32)
        self.basis = np.concatenate([bfm["shape_basis"], bfm["exp_basis"]], 1).astype(np.float32)
        self.tris = np.ascontiguousarray(bfm["triangles"], np.int32)
        self.kpt = np.asarray(bfm["kpt_ind"], np.int64)
        self.fine, self.pad, self.band, self.depth_fall, self.edge = fine, pad, band, depth_fall, edge
        self.side = CROP + 2 * pad  # grid side: one vertex per pixel of the padded crop
        g = np.arange(self.side, dtype=np.float32) - pad  # grid points in crop pixels
        self.gx, self.gy = np.meshgrid(g, g)
        self.identity = np.stack([self.gx, self.gy], -1).reshape(-1, 2)
        o = (np.arange(CROP * fine, dtype=np.float32) + 0.5) / fine - 0.5  # output pixels' centres
        self.out_xy = np.stack(np.meshgrid(o, o), -1)
        self.grid_tris = grid_triangles(np.ones((self.side, self.side), bool))  # every pixel a vertex
        # Zero at the padded border: the mesh's outline stays put, so nothing uncovers.
        edge = np.minimum(np.minimum(self.gx, CROP - 1 - self.gx), np.minimum(self.gy, CROP - 1 - self.gy))
        self.border = np.clip((edge + pad) / pad, 0, 1).astype(np.float32)

    def vertices(self, params: np.ndarray) -> np.ndarray:
        """(N, 3) the fit's mesh in image axes: 0-based crop pixels, y down, z toward
        the camera (absolute, so the head's centre keeps its depth)."""
        p = np.asarray(params, np.float32)
        s = (self.mean + self.basis @ p[12:]).reshape(-1, 3)
        pm = p[:12].reshape(3, 4)
        return (s @ pm[:, :3].T + pm[:, 3]) @ FLIP.astype(np.float32) + ORIGIN.astype(np.float32)

    def landmarks(self, params: np.ndarray) -> np.ndarray:
        """(68, 3) the fit's landmark vertices in image axes (as ``vertices``)."""
        p = np.asarray(params, np.float64)
        s = self.mean.reshape(-1, 3)[self.kpt] + self.basis.reshape(-1, 3, 50)[self.kpt] @ p[12:]
        pm = p[:12].reshape(3, 4)
        return (s @ pm[:, :3].T + pm[:, 3]) @ FLIP + ORIGIN

    def xform(self, params: np.ndarray, turn: Turn) -> np.ndarray:
        """(3, 4) image-axes similarity [A | b]: the head turned about its centre (the
        face model's origin, between the ears), then moved and scaled so that its 68
        landmarks' box has the source crop's centre and longer side: the crop rule
        (1.44 x that side, centred) holds for the turned face as for a real one."""
        rot = fit_rotation(params)
        pitch, yaw, roll = rotation_to_angles(rot)
        d_rot = angles_to_rotation(pitch + turn.pitch, yaw + turn.yaw, roll) @ rot.T
        centre = self.centre(params)
        lm = self.landmarks(params)
        c0, l0 = box(lm[:, :2])
        c1, l1 = box(((lm - centre) @ d_rot.T + centre)[:, :2])
        s = float(np.clip(l0 / l1, 0.8, 1.25))
        b = s * (centre - d_rot @ centre - np.r_[c1, centre[2]]) + np.r_[c0, centre[2]]
        return np.c_[s * d_rot, b]

    @staticmethod
    def centre(params: np.ndarray) -> np.ndarray:
        """(3,) the face model's origin in image axes: the head's centre, between the
        ears, about 13 cm behind the nose tip; the pivot of a turn."""
        return FLIP @ np.asarray(params[:12], np.float64).reshape(3, 4)[:, 3] + ORIGIN

    def profile(self, image: np.ndarray, params: np.ndarray, turn: Turn) -> Profiled:
        """One crop turned: the fit's mesh textured from the crop, drawn over the crop's
        own pixels on a 2.5D surface (module doc), both moved by the same turn."""
        from scipy import ndimage

        f, pad = self.fine, self.pad
        v = self.vertices(params)
        xf = self.xform(params, turn)
        a, b = xf[:, :3], xf[:, 3]
        size = box(self.landmarks(params)[:, :2])[1]
        # The face's depth in the source view, one sample per grid point.
        zsrc, _ = rasterise(v[:, :2] + pad, v[:, 2], self.tris, (self.side, self.side))
        face = np.isfinite(zsrc)
        if not face.any():
            raise ValueError("the fit's face is outside the crop")
        # The mesh's texture: the crop at each vertex. Vertices hidden in the crop get
        # what hides them, but a turn away from the camera keeps them hidden.
        src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101).astype(np.float32)
        colour = bilinear(src, v[:, :2] + pad)
        # Around it, the crop's pixels lie on a surface continuing the face's: the
        # depth of the nearest face pixel, falling back to the head's centre (hair and
        # ears curve away), smoothed, since where the face's surface runs along the
        # line of sight its z-buffer jumps from pixel to pixel and a turn would fan
        # the jumps out into a serrated edge.
        dist, (ni, nj) = ndimage.distance_transform_edt(~face, return_indices=True)
        centre_z = float(self.centre(params)[2])
        fall = np.exp(-((dist / (self.depth_fall * size)) ** 2))  # flat at the edge: no crease
        depth = np.where(face, zsrc, centre_z + (zsrc[ni, nj] - centre_z) * fall)
        depth = cv2.GaussianBlur(depth.astype(np.float32), (0, 0), self.edge)
        t = np.clip(dist / (self.band * size), 0, 1).astype(np.float32)
        w = (1 - t * t * (3 - 2 * t)) * self.border  # smoothstep: 1 on the face, 0 beyond the band
        # Only the part that moves is drawn, over the crop itself: it is the bottom
        # layer, and a mesh whose outline stays put covers what its inside vacates.
        moving = cv2.dilate((w > 0).astype(np.uint8), np.ones((2, 2), np.uint8))[:-1, :-1].ravel() > 0
        tris = self.grid_tris[np.r_[moving, moving]]
        g = np.concatenate([self.identity, depth.reshape(-1, 1)], 1)
        moved = g @ a.T.astype(np.float32) + b.astype(np.float32)
        w = w.reshape(-1, 1)
        xy = w * moved[:, :2] + (1 - w) * self.identity
        # Layers whatever the depths say: the face mesh in front, then this surface
        # (its face part, smoothed, would poke through the mesh's hollows: eye and
        # mouth corners; it shows only through the open mouth), the band, the fixed
        # background far behind.
        z = moved[:, 2] - (0.1 + np.minimum(t.reshape(-1) * 10, 1) + (1 - w[:, 0]) * 10) * size
        attr = np.concatenate([src.reshape(-1, 3), self.identity, np.zeros((len(g), 1), np.float32)], 1)
        side = CROP * f
        up = cv2.resize(image.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
        img = np.concatenate([up, self.out_xy, np.zeros((side, side, 1), np.float32)], -1)
        zbuf = np.full((side, side), -np.inf, np.float32)
        rasterise((xy + 0.5) * f - 0.5, z, tris, (side, side), attr, zbuf, img)
        vm = v @ a.T + b
        face_attr = np.concatenate([colour, v[:, :2], np.ones((len(v), 1))], 1)
        rasterise((vm[:, :2] + 0.5) * f - 0.5, vm[:, 2], self.tris, (side, side), face_attr, zbuf, img)
        img = img.reshape(CROP, f, CROP, f, -1).mean((1, 3))  # area average
        return Profiled(
            np.clip(np.round(img[..., :3]), 0, 255).astype(np.uint8),
            xf,
            img[..., 3:5].copy(),
            img[..., 5].copy(),
        )


def bilinear(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(K, C) ``img`` sampled at (K, 2) pixel positions (clamped to the image)."""
    n = len(xy)
    grid = np.zeros((-(-n // 256) * 256, 2), np.float32)  # cv2.remap wants < 32k a side
    grid[:n] = xy
    grid = grid.reshape(-1, 256, 2)
    out = cv2.remap(img, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, img.shape[2])[:n]


def box(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and longer side of the (K, 2) points' box: the crop rule's yardsticks."""
    lo, hi = pts.min(0), pts.max(0)
    return (lo + hi) / 2, float((hi - lo).max())


# --- the cache --------------------------------------------------------------------------


def cache_path(names: np.ndarray, copies: int, seed: int = 0) -> Path:
    """One folder per crop set, copy count and seed."""
    key = hashlib.sha1("".join(names).encode()).hexdigest()[:10]
    return CACHE_DIR / f"{key}-v{VERSION}-x{copies}-s{seed}"


@dataclass
class ProfiledSet:
    """images: (M, 120, 120, 3) uint8, memory-mapped; source: (M,) names of the crops
    they were made from; xform: (M, 3, 4) (``turn_params``); turn: (M, 2) yaw, pitch."""

    images: np.ndarray
    source: np.ndarray
    xform: np.ndarray
    turn: np.ndarray


class Stacked:
    """Image arrays indexed as one, so that the real crops (in memory) and the turned
    ones (memory-mapped, GBs) feed one Batcher without a copy."""

    def __init__(self, *parts: np.ndarray):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self.parts[k][i - self.starts[k]]


def join_profiled(data: TrainSet, prof: ProfiledSet, exclude: np.ndarray) -> tuple[TrainSet, np.ndarray]:
    """The real crops followed by the turned copies of those not in ``exclude`` (the
    validation crops: their turned copies would leak them into training), labelled
    with the turned fits of ``data.params`` (so ``--human-refit`` carries over) and
    their turned expression labels (``data.offsets``, when there are).
    Returns the joined set and the turned samples' indices in it. Their pts68 are NaN:
    nothing in training reads them; the maps come from the params."""
    index = {n: i for i, n in enumerate(data.names)}
    src = np.array([index.get(n, -1) for n in prof.source])
    keep = np.flatnonzero((src >= 0) & ~np.isin(src, exclude))
    src = src[keep]
    m = len(data.images)
    joined = TrainSet(
        Stacked(data.images, _Rows(prof.images, keep)),
        np.concatenate([data.params, turn_params(data.params[src], prof.xform[keep])]),
        np.concatenate([data.pts68, np.full((len(keep), *data.pts68.shape[1:]), np.nan, np.float32)]),
        np.concatenate([data.names, data.names[src]]),
    )
    if data.offsets is not None:
        joined.offsets = np.concatenate([data.offsets, turn_offsets(data.offsets[src], prof.xform[keep])])
    return joined, np.arange(m, m + len(keep))


class _Rows:
    """A row subset of a (memory-mapped) array, read one row at a time."""

    def __init__(self, arr: np.ndarray, rows: np.ndarray):
        self.arr, self.rows = arr, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.arr[self.rows[i]]


_worker: dict = {}


def _init_worker(data: Path) -> None:
    cv2.setNumThreads(1)
    _worker["profiler"] = FaceProfiler(load_bfm(data / "bfm" / "bfm_noneck_uv.npz"))


def _make(job: tuple) -> int:
    """Worker: profile samples [lo, hi) into the cache's memory maps."""
    folder, lo, hi, copies, seed = job
    prof: FaceProfiler = _worker["profiler"]
    data: TrainSet = _worker["data"]
    images = np.load(folder / "images.npy", mmap_mode="r+")
    xforms = np.load(folder / "xform.npy", mmap_mode="r+")
    turns = np.load(folder / "turn.npy", mmap_mode="r+")
    for k in range(lo, hi):
        i, c = divmod(k, copies)
        yaw0 = rotation_to_angles(fit_rotation(data.params[i]))[1]
        turn = pick_turn(float(yaw0), np.random.default_rng([seed, i, c]))
        try:
            out = prof.profile(data.images[i], data.params[i], turn)
            images[k], turns[k] = out.image, (turn.yaw, turn.pitch)
        except ValueError:  # a fit off the crop: keep the crop as it is
            out = Profiled(data.images[i], np.eye(3, 4), np.empty(0), np.empty(0))
            images[k], turns[k] = out.image, (0.0, 0.0)
        xforms[k] = out.xform  # written last: a sample is done when its xform is
    images.flush()
    turns.flush()
    xforms.flush()
    return hi - lo


def build_cache(data_dir: Path = DEFAULT_DATA, copies: int = 2, seed: int = 0, workers: int = 1) -> Path:
    """Profile every crop ``copies`` times into the cache; resumes where it stopped."""
    from multiprocessing import get_context

    from tqdm import tqdm

    data = load_trainset(data_dir)
    folder = cache_path(data.names, copies, seed)
    folder.mkdir(parents=True, exist_ok=True)
    m = len(data.names) * copies
    if not (folder / "xform.npy").exists():
        np.save(folder / "source.npy", np.repeat(data.names, copies))
        np.lib.format.open_memmap(folder / "images.npy", "w+", np.uint8, (m, CROP, CROP, 3)).flush()
        np.lib.format.open_memmap(folder / "turn.npy", "w+", np.float32, (m, 2)).flush()
        xf = np.lib.format.open_memmap(folder / "xform.npy", "w+", np.float64, (m, 3, 4))
        xf[:] = np.nan
        xf.flush()
    done = ~np.isnan(np.load(folder / "xform.npy", mmap_mode="r")[:, 0, 0])
    chunk = 64
    jobs = [(folder, lo, min(lo + chunk, m), copies, seed) for lo in range(0, m, chunk)
            if not done[lo : lo + chunk].all()]  # fmt: skip
    _worker["data"] = data  # inherited by forked workers
    bar = tqdm(total=m, initial=m - sum(j[2] - j[1] for j in jobs), unit="img", desc="profiling")
    if workers > 1:
        with get_context("fork").Pool(workers, _init_worker, (data_dir,)) as pool:
            for n in pool.imap_unordered(_make, jobs):
                bar.update(n)
    else:
        _init_worker(data_dir)
        for job in jobs:
            bar.update(_make(job))
    bar.close()
    return folder


def load_cache(folder: Path) -> ProfiledSet:
    """A built cache, its images memory-mapped (GBs: read from the page cache as used)."""
    xform = np.load(folder / "xform.npy")
    if np.isnan(xform[:, 0, 0]).any():
        raise SystemExit(f"error: {folder} is not finished: rerun python -m realtime.train.profiling build")
    return ProfiledSet(
        np.load(folder / "images.npy", mmap_mode="r"),
        np.load(folder / "source.npy"),
        xform,
        np.load(folder / "turn.npy"),
    )


def contact_sheet(
    data: TrainSet, prof: ProfiledSet, bfm: dict, out: Path, rows: int = 8, seed: int = 1
) -> Path:
    """Source crops and their turned copies, 2x, with the labels' 68 landmarks drawn
    (hidden ones too, as the maps hold them): to see by eye that the turned faces look
    like faces and that the labels sit on them."""
    rng = np.random.default_rng(seed)
    index = {n: i for i, n in enumerate(data.names)}
    copies = int(np.sum(prof.source == prof.source[0]))
    starts = rng.choice(len(prof.source) // copies, rows, replace=False) * copies
    tiles = []
    for s in starts:
        i = index[prof.source[s]]
        yaw0 = rotation_to_angles(fit_rotation(data.params[i]))[1]
        row = [_tile(data.images[i], landmarks_2d(data.params[i : i + 1], bfm)[0], f"yaw {yaw0:+.0f}")]
        for k in range(s, s + copies):
            p = turn_params(data.params[i : i + 1], prof.xform[k : k + 1])
            yaw, pitch = prof.turn[k]
            text = f"yaw {yaw0:+.0f} > {yaw0 + yaw:+.0f}, pitch {pitch:+.0f}"
            row.append(_tile(prof.images[k], landmarks_2d(p, bfm)[0], text))
        tiles.append(np.concatenate(row, 1))
    sheet = np.concatenate(tiles, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def _tile(img: np.ndarray, lm: np.ndarray, text: str) -> np.ndarray:
    """One crop at 2x with its landmarks and a caption."""
    t = cv2.resize(np.ascontiguousarray(img), (2 * CROP, 2 * CROP), interpolation=cv2.INTER_CUBIC)
    for x, y in lm:
        cv2.circle(t, (round(2 * x + 0.5), round(2 * y + 0.5)), 2, (0, 255, 0), -1, cv2.LINE_AA)
    for colour, width in (((0, 0, 0), 3), ((255, 255, 0), 1)):
        cv2.putText(t, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, width, cv2.LINE_AA)
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m realtime.train.profiling", description=__doc__)
    ap.add_argument("what", choices=["build", "sheet"], help="build the cache / draw a contact sheet from it")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--copies", type=int, default=2, help="turned copies per crop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="processes")
    ap.add_argument("--out", type=Path, default=Path("docs/profiled_samples.jpg"), help="sheet path")
    args = ap.parse_args(argv)
    if args.what == "build":
        print(build_cache(args.data, args.copies, args.seed, args.workers))
        return 0
    data = load_trainset(args.data)
    bfm = load_bfm(args.data / "bfm" / "bfm_noneck_uv.npz")
    print(contact_sheet(data, load_cache(cache_path(data.names, args.copies, args.seed)), bfm, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
