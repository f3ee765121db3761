"""Training data: AFLW crops, their 3DMM fits, and ground-truth position maps.

The layout's raster fixes, for every face pixel, three vertex ids and barycentric
weights, so a ground-truth map is a weighted gather of the mesh: a batch of maps is
a few tensor ops, cheap enough to make a fresh one for every augmented sample.
Geometric augmentation is a 2x3 affine applied both to the image (``cv2.warpAffine``)
and to the map's x, y values (z scales with the affine's scale).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.core.lidlip import LidLipWarp
from realtime.core.paths import CACHE
from realtime.core.paths import SHARED_DATA as DEFAULT_DATA
from realtime.core.uv import UVRaster, build_layout, mirror_vertices
from realtime.live.track import (  # the live tracker's framing
    STILL_MOUTH_MAX_YAW,
    StillMouthFraming,
    landmark_crop,
    still_mouth,
)

CROP = 120  # side of the training crops in pixels
NME_DROP = 0.15  # fits worse than this against AFLW's own labels are bad crops
# AFLW's 21 hand-marked points (1-based, AFLW's order) -> the 68-scheme landmarks on
# the same spot (a list is averaged: the eye centres). Left out, as they mark other
# spots: the ears, the nostril wings (the 68 scheme marks the nostril base, 3-4 % of
# the face size away) and the mouth centre (open mouths).
HUMAN21_TO_68 = {
    1: [17], 2: [19], 3: [21], 4: [22], 5: [24], 6: [26],
    7: [36], 8: [37, 38, 40, 41], 9: [39], 10: [42], 11: [43, 44, 46, 47], 12: [45],
    15: [30], 18: [48], 20: [54], 21: [8],
}  # fmt: skip


@dataclass
class TrainSet:
    """images: (M, 120, 120, 3) uint8 RGB crops; params: (M, 62) float32 3DMM fits;
    pts68: (M, 3, 68) float32 labelled landmarks in 0-based crop pixels;
    yaw: (M,) float32 head yaw in degrees from AFLW's own annotation (None if absent);
    pts21: (M, 2, 21) float32 AFLW's hand-marked points in 0-based crop pixels, -1
    where not marked (None if absent);
    offsets: (M, 32, 2) float32 expression labels, crop pixels that move the fit's lid
    and lip points (realtime.train.expression; None: the fits' own)."""

    images: np.ndarray
    params: np.ndarray
    pts68: np.ndarray
    names: np.ndarray
    yaw: np.ndarray | None = None
    pts21: np.ndarray | None = None
    offsets: np.ndarray | None = None


def load_trainset(data: Path = DEFAULT_DATA) -> TrainSet:
    """Decode all crops once (cached as one .npy) and drop the known-bad fits."""
    train = data / "train"
    with np.load(train / "aflw_teacher_params.npz") as f:
        names, params, pts68, nme = f["names"], f["params"], f["pts68"], f["nme21"]
    key = hashlib.sha1("".join(names).encode()).hexdigest()[:10]
    cached = CACHE / f"crops120-{key}.npy"
    if cached.exists():
        images = np.load(cached)
    else:
        images = read_crops(names, data)
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, images)
    yaw = pts21 = None
    with np.load(train / "aflw_crops_labels21.npz") as f:
        if np.array_equal(f["names"], names):
            yaw, pts21 = f["yaw"].astype(np.float32), f["pts21_crop120"].astype(np.float32)
    keep = ~(nme > NME_DROP)  # NaN (clipped box) is kept: the fit is still fine
    return TrainSet(
        images[keep],
        params[keep],
        pts68[keep],
        names[keep],
        None if yaw is None else yaw[keep],
        None if pts21 is None else pts21[keep],
    )


def read_crops(names: np.ndarray, data: Path = DEFAULT_DATA) -> np.ndarray:
    """(N, 120, 120, 3) RGB uint8: the named crops decoded from the training zip (a
    few hundred of them read without decoding all 19k)."""
    images = np.empty((len(names), CROP, CROP, 3), np.uint8)
    with zipfile.ZipFile(data / "train" / "aflw_crops_120.zip") as z:
        for i, n in enumerate(names):
            buf = np.frombuffer(z.read(f"images/{n}"), np.uint8)
            images[i] = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return images


def to_crop_xy(vx, vy):
    """The fits' model space (1-based pixels, y up) -> 0-based 120-crop pixels, y down;
    for numpy arrays and tensors alike, so the one convention lives in one place."""
    return vx - 1, CROP - vy


def landmark_basis(bfm: dict) -> np.ndarray:
    """(68, 3, 50) the shape and expression basis at the 68 landmark vertices."""
    return np.concatenate([bfm["shape_basis"], bfm["exp_basis"]], 1).reshape(-1, 3, 50)[bfm["kpt_ind"]]


def landmarks_2d(params: np.ndarray, bfm: dict) -> np.ndarray:
    """(M, 68, 2) the fits' 68 landmarks in 0-based 120-crop pixels, y down: only the
    landmark vertices, where ``MapMaker.vertices`` would build every crop's whole mesh
    (8 GB for the 19k training crops)."""
    kpt = bfm["kpt_ind"]
    basis = landmark_basis(bfm)
    s = bfm["mean"].reshape(-1, 3)[kpt][None] + np.einsum("kcn,mn->mkc", basis, params[:, 12:])
    pm = params[:, :12].reshape(-1, 3, 4)
    v = np.einsum("mrc,mkc->mkr", pm[:, :2, :3], s) + pm[:, None, :2, 3]
    return np.stack(to_crop_xy(v[..., 0], v[..., 1]), -1)


def refit_to_human(
    params: np.ndarray, pts21: np.ndarray, bfm: dict, noise_px: float = 2.0, max_move: float = 0.08
) -> np.ndarray:
    """(M, 62) teacher fits moved toward AFLW's hand-marked points.

    The teacher (3DDFA_V2) marks brows about 2.4 % of the face size higher and the
    chin 1-2 % lower than AFLW's annotators do, and AFLW2000-3D's ground truth is
    3DDFA's fit to such annotations, so a student of the raw teacher inherits a
    definition of a landmark that the benchmark does not share. Each crop's shape and
    expression coefficients and its translation get the maximum a posteriori
    correction: the hand-marked points (``noise_px`` of error each) against the face
    model's own prior on its coefficients, centred on the teacher's fit. Pose and
    scale stay the teacher's. A crop keeps its fit with fewer than three usable marks,
    or where the correction would move its 68 landmarks by more than ``max_move`` of
    the face size on average (1 % of crops: marks that disagree that much are
    mislabelled, not a definition). Leaving each mark out in turn (4,000 crops), the
    refit predicts the left-out mark to 3.76 % of the face size on average, the
    teacher's fit to 3.92 %; 1 px of error would reach 3.70 % (not yet trained on)."""
    groups = list(HUMAN21_TO_68.values())
    marks = np.stack([pts21[:, :, j - 1] for j in HUMAN21_TO_68], 1)  # (M, G, 2)
    seen = (marks >= 0).all(-1)  # (M, G)
    p = params.astype(np.float64)
    before = landmarks_2d(p, bfm)
    out = map_correction(p, marks, seen, groups, bfm, noise_px)
    box = before.max(1) - before.min(1)
    move = np.linalg.norm(landmarks_2d(out, bfm) - before, axis=-1).mean(1)
    teacher = (seen.sum(1) < 3) | (move > max_move * np.sqrt(box[:, 0] * box[:, 1]))
    out[teacher] = p[teacher]
    return out.astype(np.float32)


def map_correction(
    p: np.ndarray, marks: np.ndarray, seen: np.ndarray, groups: list[list[int]], bfm: dict, noise_px: float
) -> np.ndarray:
    """(M, 62) float64 fits with shape, expression and 2D translation moved to the
    maximum a posteriori fit of ``marks`` (M, G, 2) crop pixels (``seen`` (M, G) says
    which count), each the mean of its group of the 68 landmarks, ``noise_px`` of
    error each, against the face model's prior. Pose and scale stay."""
    basis = landmark_basis(bfm)
    now = landmarks_2d(p, bfm)
    cur = np.stack([now[:, k].mean(1) for k in groups], 1)  # (M, G, 2)
    # d(crop pixels)/d(coefficients) at each group (linear in the coefficients)
    sr = p[:, :12].reshape(-1, 3, 4)[:, :2, :3]
    jac = np.einsum("mrc,gcn->mgrn", sr, np.stack([basis[k].mean(0) for k in groups]))
    jac[:, :, 1] *= -1  # y down
    shift = np.broadcast_to(np.eye(2), (*jac.shape[:3], 2))  # image-space translation
    a = (np.concatenate([jac, shift], -1) * (seen[..., None, None] / noise_px)).reshape(len(p), -1, 52)
    r = ((marks - cur) * (seen[..., None] / noise_px)).reshape(len(p), -1, 1)
    prior = np.diag(np.r_[1.0 / bfm["param_std"][12:], 1e-6, 1e-6] ** 2)
    at = a.transpose(0, 2, 1)
    delta = np.linalg.solve(at @ a + prior, at @ r)[..., 0]
    out = p.copy()
    out[:, 12:] += delta[:, :50]
    out[:, 3] += delta[:, 50]  # image x is model x
    out[:, 7] -= delta[:, 51]  # image y is minus model y
    return out


class MapMaker:
    """3DMM parameters (+ an affine) -> position maps in the layout's UV space."""

    def __init__(self, bfm: dict, resolution: int):
        self.layout, raster = build_layout(bfm, resolution)
        warp = LidLipWarp.from_bfm(bfm)  # expression labels move the lids and lips (maps(offsets=...))
        self.warp_rows = torch.from_numpy(warp.rows)
        self.warp_weights = torch.from_numpy(warp.weights)
        self.raster: UVRaster = raster
        self.basis = torch.from_numpy(
            np.concatenate([bfm["shape_basis"], bfm["exp_basis"]], 1).astype(np.float32)
        )
        self.mean = torch.from_numpy(bfm["mean"].astype(np.float32))
        self.kpt_ind = torch.from_numpy(bfm["kpt_ind"].astype(np.int64))
        # The 68 landmark pixels hold their landmark vertex exactly, not the surface
        # point interpolated at the rounded UV position (up to 2 px off), so that
        # landmarks read from a map are the labelled ones.
        ids, w = raster.vertex_ids.copy(), raster.weights.copy()
        kflat = self.layout.kpt_ind[1] * resolution + self.layout.kpt_ind[0]
        rows = np.searchsorted(raster.pixels, kflat)
        ids[rows] = bfm["kpt_ind"][:, None]
        w[rows] = (1.0, 0.0, 0.0)
        self.ids = torch.from_numpy(ids)
        self.w = torch.from_numpy(w)
        self.pixels = torch.from_numpy(raster.pixels)
        self.mirror = torch.from_numpy(mirror_vertices(bfm))

    def to(self, device: torch.device | str) -> MapMaker:
        """Move the model and raster to ``device``: on a GPU a batch of maps is a few
        kernels, where the CPU gather would be the training loop's bottleneck."""
        for name in ("basis", "mean", "kpt_ind", "ids", "w", "pixels", "mirror", "warp_rows", "warp_weights"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def vertices(self, params: np.ndarray, offsets: np.ndarray | None = None) -> torch.Tensor:
        """(B, N, 3) dense vertices in 0-based 120-crop pixels (y down, min z = 0);
        ``offsets`` (B, 32, 2) crop pixels move the lid and lip control points
        (realtime.core.lidlip.CONTROLS) and the skin around them, depth kept."""
        p = torch.as_tensor(np.asarray(params, np.float32), device=self.basis.device)
        s = (self.mean[:, None] + self.basis @ p[:, 12:].T).T.reshape(len(p), -1, 3)
        pm = p[:, :12].reshape(-1, 3, 4)
        v = s @ pm[:, :, :3].transpose(1, 2) + pm[:, None, :, 3]
        x, y = to_crop_xy(v[..., 0], v[..., 1])
        z = v[..., 2] - 1
        z = z - z.min(1, keepdim=True).values
        out = torch.stack([x, y, z], -1)
        if offsets is not None:
            d = self.warp_weights @ torch.as_tensor(np.asarray(offsets, np.float32), device=out.device)
            out[:, self.warp_rows, :2] += d
        return out

    def maps(self, params: np.ndarray, affine: np.ndarray, offsets: np.ndarray | None = None) -> torch.Tensor:
        """(B, 3, R, R) maps in output pixels; ``affine`` (B, 2, 3) maps 120-crop
        pixels to output pixels (pixel centres at integers, as cv2.warpAffine);
        ``offsets`` as ``vertices``.

        An affine that mirrors the crop (negative determinant) turns the face's left
        side into its right: each UV pixel then takes its mirror vertex, or the map
        would hold a face inside out."""
        v = self.vertices(params, offsets)
        a = torch.as_tensor(np.asarray(affine, np.float32), device=v.device)
        det = torch.linalg.det(a[:, :, :2])
        mirrored = det < 0
        if mirrored.any():
            v = torch.where(mirrored[:, None, None], v[:, self.mirror], v)
        pts = (v[:, self.ids] * self.w[None, ..., None]).sum(2)  # (B, P, 3)
        xy = pts[..., :2] @ a[:, :, :2].transpose(1, 2) + a[:, None, :, 2]
        z = pts[..., 2] * torch.sqrt(det.abs())[:, None]
        r = self.layout.resolution
        out = torch.zeros(len(v), r * r, 3, device=v.device)
        out[:, self.pixels] = torch.cat([xy, z[..., None]], -1)
        return out.reshape(len(v), r, r, 3).permute(0, 3, 1, 2).contiguous()


def base_affine(resolution: int) -> np.ndarray:
    """120-crop pixels -> R-crop pixels for a plain resize (half-pixel aligned)."""
    s = resolution / CROP
    return np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5]], np.float64)


def random_affine(
    rng: np.random.Generator,
    resolution: int,
    rotate_p: float = 0.6,
    flip_p: float = 0.0,
    strength: float = 1.0,
    framing: float | None = None,
) -> np.ndarray:
    """The paper's geometric augmentation: rotation up to +-45 deg, scale 0.9-1.2,
    translation up to 10% of the crop, about the crop centre; and, beyond the paper,
    a left-right mirror with probability ``flip_p`` (a face's mirror image is another
    plausible face, so it doubles the poses and lighting seen). ``strength`` scales
    each range about the identity (0.5: +-22.5 deg, 0.95-1.1, 5 %) with the same
    draws, for a last phase closer to the upright, centred crops seen at test time;
    ``framing``, where given, scales the scale and translation instead (the live
    tracker's crops fall a few per cent off the landmarks' framing, and a network
    trained on a narrow framing reads the mouth by where the crop falls:
    docs/expression.md, session 20)."""
    framing = strength if framing is None else framing
    flip = flip_p > 0 and rng.random() < flip_p  # no draw when off: old runs replay
    angle = strength * rng.uniform(-45, 45) if rng.random() < rotate_p else 0.0
    scale = 1 + framing * (rng.uniform(0.9, 1.2) - 1)
    shift = framing * rng.uniform(-0.1, 0.1, 2) * resolution
    c = (resolution - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), angle, scale)
    m[:, 2] += shift
    base = np.vstack([base_affine(resolution), [0, 0, 1]])
    if flip:
        base = base @ np.array([[-1.0, 0, CROP - 1], [0, 1, 0], [0, 0, 1]])
    return m @ base


def augment_pixels(
    img: np.ndarray,
    rng: np.random.Generator,
    donor: np.ndarray,
    strength: float = 1.0,
    landmarks: np.ndarray | None = None,
    occlude: Occlude | None = None,
) -> np.ndarray:
    """Colour x0.6-1.4 per channel, synthetic occlusion, blur or down/up-sampling.

    ``donor`` is another training image whose texture fills the occluder, so the
    network learns to see through real-looking clutter, not flat boxes. With
    ``occlude`` and the crop's ``landmarks`` (68, 2), ``occlude`` draws the occluder
    (realtime.train.occluders.occlude_one: a hand, hair, glasses, a microphone or an
    object on the face) instead of a box. ``strength`` scales the colour range about 1
    and the chances of an occluder and of blur."""
    r = img.shape[0]
    out = img.astype(np.float32) * (1 + strength * (rng.uniform(0.6, 1.4, 3) - 1))[None, None]
    occluded = rng.random() < 0.4 * strength
    if occluded and occlude is not None and landmarks is not None:
        out = occlude(np.clip(out, 0, 255).astype(np.uint8), landmarks, rng, donor).astype(np.float32)
    elif occluded:
        h, w = (rng.uniform(0.15, 0.45, 2) * r).astype(int)
        y, x = rng.integers(0, r - h), rng.integers(0, r - w)
        dy, dx = rng.integers(0, r - h), rng.integers(0, r - w)
        patch = cv2.resize(donor, (r, r))[dy : dy + h, dx : dx + w].astype(np.float32)
        if rng.random() < 0.5:
            patch = patch * 0 + rng.uniform(0, 255, 3)
            patch += rng.normal(0, 20, patch.shape)
        out[y : y + h, x : x + w] = patch
    u = rng.random()
    if u < 0.25 * strength:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.6))
    elif u < 0.5 * strength:
        small = max(16, int(r * rng.uniform(0.35, 0.8)))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (r, r))
    return np.clip(out, 0, 255).astype(np.uint8)


#: (crop uint8 RGB, its (68, 2) landmarks, rng, a donor crop) -> the crop with an occluder
Occlude = Callable[[np.ndarray, np.ndarray, np.random.Generator, np.ndarray], np.ndarray]


class Batcher:
    """Augmented (images, maps) batches from a TrainSet, deterministic per seed."""

    def __init__(
        self,
        data: TrainSet,
        maker: MapMaker,
        augment: bool = True,
        flip_p: float = 0.0,
        strength: float = 1.0,
        occlude: Occlude | None = None,
        resolution: int | None = None,
        framing: float | None = None,
        still_mouth: float = 0.0,
    ):
        """``still_mouth``: the share of crops framed as the live tracker's
        ``StillMouthFraming`` frames them, on their landmarks with the jaw and lips of the
        mean face at rest (the rest on their own landmarks; unaugmented batches frame all
        crops one way, still-mouth from a share of 1)."""
        self.data, self.maker, self.augment, self.flip_p = data, maker, augment, flip_p
        self.strength, self.framing = strength, framing  # random_affine's
        self.still_p = still_mouth if augment else float(still_mouth >= 1.0)
        self.still_mean = StillMouthFraming.of(maker.layout).mean if self.still_p > 0 else None
        self.occlude = occlude  # draws hands, hair, glasses... on the face instead of boxes
        # the crops' side: the layout's unless told (a mobile network's input is smaller
        # than its map; affines then map into crop pixels, as the maps' values are)
        self.r = resolution or maker.layout.resolution

    def _frontal(self, i: int) -> bool:
        """Whether crop ``i`` is turned less than the live framing's ``STILL_MOUTH_MAX_YAW``."""
        return self.data.yaw is None or abs(float(self.data.yaw[i])) < STILL_MOUTH_MAX_YAW

    def _still(self, rng: np.random.Generator) -> bool:
        """Whether the next crop is framed with the mouth at rest (``still_mouth``'s share)."""
        return self.still_p >= 1 or rng.random() < self.still_p

    def _reframe(self, lm: np.ndarray) -> np.ndarray:
        """(3, 3) 120-crop pixels -> 120-crop pixels that put the ``still_mouth`` framing
        of landmarks ``lm`` (68, 2) where their own framing was (identity without them)."""
        if not np.isfinite(lm).all():  # turned crops have no 68 labels
            return np.eye(3)
        (c0, s0), (c1, s1) = landmark_crop(lm), landmark_crop(still_mouth(lm, self.still_mean))
        k = s0 / s1
        return np.array([[k, 0, c0[0] - k * c1[0]], [0, k, c0[1] - k * c1[1]], [0, 0, 1]])

    def batch(self, idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, R, R) float images in [0, 1] and (B, 3, R, R) maps, on the CPU."""
        imgs, affs = self.pixels(idx, rng)
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0
        return x, self.maker.maps(self.data.params[idx], affs)

    def pixels(self, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The image half of a batch: (B, R, R, 3) uint8 augmented crops and the
        (B, 2, 3) affines that made them. Data-loader workers run this part; the
        maps are made where the model runs, from the affines."""
        imgs, affs = [], []
        for i in idx:
            if self.augment:
                how = {"flip_p": self.flip_p, "strength": self.strength, "framing": self.framing}
                a = random_affine(rng, self.r, **how)[:2]
            else:
                a = base_affine(self.r)
            if self.still_mean is not None and self._frontal(i) and self._still(rng):
                a = a @ self._reframe(self.data.pts68[i, :2].T)
            im = cv2.warpAffine(
                self.data.images[i],
                a,
                (self.r, self.r),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
            )
            if self.augment:
                donor = self.data.images[rng.integers(len(self.data.images))]
                lm = None
                if self.occlude is not None:
                    lm = self.data.pts68[i, :2].T @ a[:, :2].T + a[:, 2]
                    if not np.isfinite(lm).all():  # turned crops have no 68 labels: a box
                        lm = None
                im = augment_pixels(im, rng, donor, self.strength, lm, self.occlude)
            imgs.append(im)
            affs.append(a)
        return np.stack(imgs), np.stack(affs)
