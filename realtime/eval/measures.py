"""What the swap benchmark measures in an image, each one number a user would check:
the face region (the landmark hull), PSNR and SSIM over it, gradient energy and the
band across the blend boundary (a visible seam), and the chroma mottle (a patchwork of
skin colours)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.core.types import Reconstruction

PSNR_CAP = 100.0  # identical images


def face_hull(shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """(H, W) bool: the convex hull of the 68 landmarks, the face region measured."""
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(landmarks[:, :2]).astype(np.int32)), 1)
    return m > 0


def _roi(mask: np.ndarray, pad: int = 8) -> tuple[slice, slice]:
    """The mask's bounding box grown by ``pad``: the measures only need pixels there."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return slice(0, 0), slice(0, 0)
    h, w = mask.shape
    return slice(max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)), slice(
        max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
    )


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) over the masked pixels, all channels; PSNR_CAP when identical."""
    d = a[mask].astype(np.float64) - b[mask]
    mse = float((d * d).mean()) if d.size else 0.0
    return PSNR_CAP if mse <= 1e-10 else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) over
    the masked pixels, averaged over the colour channels (computed on the mask's
    bounding box: the 11-pixel window sees nothing further)."""
    ys, xs = _roi(mask)
    a, b, mask = a[ys, xs], b[ys, xs], mask[ys, xs]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT_101)  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out.append(s[mask].mean())
    return float(np.mean(out))


def gradient_energy(image: np.ndarray) -> np.ndarray:
    """(H, W) squared gradient magnitude of the grey image (Sobel)."""
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return gx * gx + gy * gy


def boundary_band(shape: tuple[int, ...], landmarks: np.ndarray, width: float = 0.08) -> np.ndarray:
    """(H, W) bool: pixels within ``width`` x the face's size (sqrt of the hull's area)
    of the landmark hull's edge, on either side: where the swap meets the frame."""
    hull = face_hull(shape, landmarks).astype(np.uint8)
    size = np.sqrt(max(hull.sum(), 1))
    inside = cv2.distanceTransform(hull, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - hull, cv2.DIST_L2, 3)
    return np.maximum(inside, outside) <= width * size


def mottle(image: np.ndarray, landmarks: np.ndarray) -> float:
    """RMS of the chroma (CIE Lab a, b) detail finer than 1/24 of the face's width,
    inside the face (the landmark hull, its outer 5 % left out: the edge is the seam
    measure's): blotches of colour a viewer sees as a patchwork. The detail is the
    image minus its Gaussian blur with sigma = width / 48 (a bump 1/24 of the width
    across is two sigmas wide)."""
    width = float(np.ptp(landmarks[:, 0]))
    hull = face_hull(image.shape, landmarks).astype(np.uint8)
    inner = cv2.distanceTransform(hull, cv2.DIST_L2, 3) > 0.05 * width
    if not inner.any():
        return 0.0
    ys, xs = _roi(inner, int(3 * width / 48) + 2)
    lab = cv2.cvtColor(image[ys, xs], cv2.COLOR_BGR2LAB)[..., 1:].astype(np.float32)
    detail = lab - cv2.GaussianBlur(lab, (0, 0), max(width / 48, 0.5))
    return float(np.sqrt((detail**2).sum(-1)[inner[ys, xs]].mean()))


#: An input with less chroma detail than this (Lab units) is a grey or sepia photo:
#: there is no ratio to take (``mottle_ratio`` gives None).
GREY = 0.5


def mottle_ratio(output: np.ndarray, reference: np.ndarray, landmarks: np.ndarray) -> float | None:
    """``mottle`` of the output over the input's (1: no more blotches than the input);
    None for a grey input (``GREY``)."""
    ref = mottle(reference, landmarks)
    return None if ref < GREY else mottle(output, landmarks) / ref


class ClipMeter:
    """Self-swap figures of one effect over a clip: PSNR, SSIM and mottle per frame,
    edge and flicker over the clip. ``Reference`` holds what the input gives to every
    effect's figures, computed once a frame."""

    def __init__(self):
        self.psnr, self.ssim, self.mottle = [], [], []
        self.edge_in = self.edge_out = self.flick_in = self.flick_out = 0.0
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, img: np.ndarray, out: np.ndarray, ref: Reference, source_frame: bool) -> None:
        if not source_frame:
            self.psnr.append(psnr(out, img, ref.hull))
            self.ssim.append(ssim(out, img, ref.hull))
            if ref.mottle >= GREY:
                self.mottle.append(mottle(out, ref.landmarks) / ref.mottle)
        self.edge_in += ref.edge
        self.edge_out += band_energy(out, ref.band)
        if self.prev is not None:
            region = ref.hull | self.prev[2]
            self.flick_in += float(np.abs(img.astype(np.int16) - self.prev[0])[region].mean())
            self.flick_out += float(np.abs(out.astype(np.int16) - self.prev[1])[region].mean())
        self.prev = (img, out, ref.hull)

    def result(self) -> dict:
        return {
            "self_psnr": float(np.mean(self.psnr)),
            "self_ssim": float(np.mean(self.ssim)),
            "mottle": float(np.mean(self.mottle)) if self.mottle else None,
            "edge_ratio": self.edge_out / max(self.edge_in, 1e-9),
            "flicker_ratio": self.flick_out / max(self.flick_in, 1e-9),
        }


@dataclass
class Reference:
    """One input frame's side of the clip figures."""

    landmarks: np.ndarray
    hull: np.ndarray
    band: np.ndarray
    edge: float
    mottle: float

    @classmethod
    def of(cls, img: np.ndarray, rec: Reconstruction) -> Reference:
        band = boundary_band(img.shape, rec.landmarks)
        return cls(
            rec.landmarks,
            face_hull(img.shape, rec.landmarks),
            band,
            band_energy(img, band),
            mottle(img, rec.landmarks),
        )


def seam_ratios(output: np.ndarray, reference: np.ndarray, landmarks: np.ndarray, sectors: int = 8):
    """The edge ratio (gradient energy in the band across the face's edge, output over
    input) over the whole band and in its worst of ``sectors`` equal angles about the
    face's centre: a step on one side only (the far cheek of a turned face) shows in
    the second while the first averages it away."""
    band = boundary_band(reference.shape, landmarks)
    ys, xs = _roi(band, 4)
    e_out = gradient_energy(output[ys, xs])
    e_in = gradient_energy(reference[ys, xs])
    yy, xx = np.nonzero(band[ys, xs])
    centre = landmarks[:, :2].mean(0) - (xs.start, ys.start)
    angle = np.arctan2(yy - centre[1], xx - centre[0])
    sector = ((angle + np.pi) / (2 * np.pi) * sectors).astype(int) % sectors
    out = np.bincount(sector, e_out[yy, xx], sectors)
    inp = np.bincount(sector, e_in[yy, xx], sectors)
    whole = float(out.sum() / max(inp.sum(), 1e-9))
    return whole, float((out / np.maximum(inp, 1e-9)).max())


def band_energy(image: np.ndarray, band: np.ndarray) -> float:
    """Gradient energy summed over ``band`` (computed on its bounding box only)."""
    if not band.any():
        return 0.0
    ys, xs = _roi(band, 4)
    return float(gradient_energy(image[ys, xs])[band[ys, xs]].sum())
