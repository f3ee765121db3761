"""Training data for the visibility network (realtime.live.occlusion): real face crops with
synthetic things in front of them, and where the face still shows.

- **The face's footprint** comes from each crop's 3DMM fit: its dense mesh rasterised
  in crop pixels (every triangle; the footprint of a surface is the union of its
  triangles, whatever hides what inside it).
- **What covers it** is drawn on top, one kind per occluder:
  hands (a palm and fingers in a skin tone and texture taken from another crop's
  face, shaded), finger bars (2-5 rounded bars in a donor's skin tone, flat or
  textured, shaded across each bar, often over the face's border and partly outside
  it: what a hand's fingers alone look like), objects (polygons filled with another
  crop's background or clothing), hair (strands of curves), glasses (frames around
  the eyes, or dark lenses), microphones and cups (bars, balls and ellipses).
- Then blur, down/up-sampling and colour changes, over the image with its occluders.

**Held out.** Every occluder's shape comes from a numbered shape (its own random
generator); numbers divisible by 5 are never drawn in training. Textures and skin
come from donor images: training crops in training, AFLW2000-3D faces in evaluation.
So ``python -m realtime.eval occlusion`` meets shapes and textures the
network never saw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.core.paths import CACHE
from realtime.core.raster import rasterise
from realtime.train.groundtruth import CROP, HUMAN21_TO_68, MapMaker, TrainSet

KINDS = ("hand", "fingers", "object", "hair", "glasses", "mic")
KIND_P = (0.3, 0.2, 0.15, 0.15, 0.1, 0.1)
HELD_OUT_EVERY = 5  # shape numbers divisible by this are kept out of training
SHAPES = 100_000


def footprint(vertices: np.ndarray, triangles: np.ndarray, size: int = CROP) -> np.ndarray:
    """(size, size) bool: pixels any triangle of the mesh covers (pixel centres)."""
    zbuf, _ = rasterise(vertices[:, :2], vertices[:, 2], triangles, (size, size))
    return np.isfinite(zbuf)


def footprints(data: TrainSet, maker: MapMaker, triangles: np.ndarray, chunk: int = 64) -> np.ndarray:
    """(M, 120, 120) bool footprints of every crop's fit, cached (bit-packed) by the fits."""
    key = hashlib.sha1(data.params.tobytes()).hexdigest()[:10]
    path = CACHE / "occlusion" / f"footprints-{key}.npy"
    if path.is_file():
        return np.unpackbits(np.load(path), axis=-1, count=CROP).astype(bool).reshape(-1, CROP, CROP)
    tris = np.ascontiguousarray(triangles, np.int64)
    out = np.zeros((len(data.params), CROP, CROP), bool)
    for s in range(0, len(out), chunk):
        verts = maker.vertices(data.params[s : s + chunk]).numpy()
        for i, v in enumerate(verts):
            out[s + i] = footprint(v, tris)
        print(f"\rfootprints {min(s + chunk, len(out))}/{len(out)}", end="", flush=True)
    print()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.packbits(out.reshape(len(out), CROP, CROP), axis=-1))
    return out


#: AFLW's 21 points placed by the 68-scheme landmarks: the 16 that mark one, and the
#: nostrils and the mouth's centre by the nearest ones (the ears have none).
AFLW21 = {**HUMAN21_TO_68, 14: [31], 16: [35], 19: [62, 66]}


def aflw_points(lm: np.ndarray) -> np.ndarray:
    """(P, 2) where AFLW's points in ``AFLW21`` (in its order) sit, from (68, 2) landmarks."""
    return np.stack([lm[k].mean(0) for k in AFLW21.values()])


def marked21(data_dir: Path) -> dict[str, np.ndarray]:
    """Crop name -> (21,) bool: which of AFLW's 21 points its annotator marked."""
    with np.load(data_dir / "train" / "aflw_crops_labels21.npz") as f:  # absent: x = -1 there
        return dict(zip(f["names"], f["pts21_orig"][:, 0] >= 0, strict=True))


def hidden_marks(data: TrainSet, data_dir: Path, max_yaw: float = 30.0) -> np.ndarray:
    """(M, P) bool: AFLW's annotator left point ``AFLW21`` out of a face turned less
    than ``max_yaw``: there, something covered it (hair, a hand, sunglasses)."""
    marked = marked21(data_dir)
    cols = [j - 1 for j in AFLW21]
    absent = ~np.stack([marked[n][cols] for n in data.names])
    frontal = np.abs(data.yaw) < max_yaw if data.yaw is not None else np.zeros(len(data.names), bool)
    # nostrils are left out of one frontal face in six, far more often than anything
    # covers them: an annotator's habit, not an occluder
    dark = np.array([j in (14, 16) for j in AFLW21])
    return absent & frontal[:, None] & ~dark


def shape_number(rng: np.random.Generator, held_out: bool) -> int:
    """A shape number from the training pool, or from the held-out one."""
    n = int(rng.integers(SHAPES // HELD_OUT_EVERY)) * HELD_OUT_EVERY
    return n if held_out else n + int(rng.integers(1, HELD_OUT_EVERY))


@dataclass
class Donor:
    """Where an occluder takes its looks: an RGB face image of the crop's size."""

    image: np.ndarray

    def skin(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """(H, W, 3) float32 skin texture from the donor's cheeks and forehead."""
        r = len(self.image)
        c = int(r * rng.uniform(0.4, 0.6)), int(r * rng.uniform(0.45, 0.6))
        h = max(4, r // 8)
        patch = self.image[c[1] - h : c[1] + h, c[0] - h : c[0] + h].astype(np.float32)
        patch = cv2.GaussianBlur(patch, (0, 0), 1.5)
        return cv2.resize(patch, shape[::-1], interpolation=cv2.INTER_LINEAR)

    def tone(self, rng: np.random.Generator) -> np.ndarray:
        """(3,) float32 one skin colour: the median of a patch of the donor's skin."""
        patch = self.skin(rng, (8, 8))
        return np.median(patch.reshape(-1, 3), axis=0)

    def texture(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """(H, W, 3) float32 from the donor's edges: background or clothing."""
        r = len(self.image)
        h = max(8, r // 4)
        corner = rng.integers(4)
        y = 0 if corner < 2 else r - h
        x = 0 if corner % 2 == 0 else r - h
        patch = self.image[y : y + h, x : x + h].astype(np.float32)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return cv2.resize(np.ascontiguousarray(patch), shape[::-1], interpolation=cv2.INTER_LINEAR)


SS = 2  # occluders are drawn at twice the size, then reduced: anti-aliased edges


def _canvas(shape: tuple[int, int]) -> np.ndarray:
    return np.zeros((shape[0] * SS, shape[1] * SS), np.uint8)


def _capsule(mask: np.ndarray, a: np.ndarray, b: np.ndarray, width: float) -> None:
    cv2.line(
        mask,
        tuple(int(v) for v in a * SS),
        tuple(int(v) for v in b * SS),
        255,
        max(1, int(width * SS)),
        cv2.LINE_AA,
    )


def _hand(
    shape: tuple[int, int], centre: np.ndarray, scale: float, srng: np.random.Generator, rng
) -> np.ndarray:
    """A palm (ellipse) with four fingers and a thumb, turned at random."""
    m = _canvas(shape)
    palm = scale * srng.uniform(0.28, 0.4)
    aspect = srng.uniform(0.75, 1.0)
    angle = rng.uniform(0, 360)
    rot = np.deg2rad(angle)
    up = np.array([np.sin(rot), -np.cos(rot)])
    side = np.array([np.cos(rot), np.sin(rot)])
    cv2.ellipse(
        m,
        tuple(int(v) for v in centre * SS),
        (int(palm * aspect * SS), int(palm * SS)),
        angle,
        0,
        360,
        255,
        -1,
        cv2.LINE_AA,
    )
    spread = srng.uniform(0.0, 0.25)
    n_fingers = 4 if srng.random() < 0.85 else 3
    curl = srng.uniform(0.4, 1.0, n_fingers) if srng.random() < 0.3 else np.ones(n_fingers)
    for k in range(n_fingers):
        off = (k - (n_fingers - 1) / 2) / max(n_fingers - 1, 1)
        base = centre + up * palm * 0.8 + side * off * palm * aspect * 1.3
        direction = up * np.cos(off * spread * 2) + side * np.sin(off * spread * 2)
        length = palm * srng.uniform(1.1, 1.6) * (1 - 0.2 * abs(off)) * curl[k]
        _capsule(m, base, base + direction * length, palm * srng.uniform(0.32, 0.42))
    t_side = 1 if srng.random() < 0.5 else -1
    base = centre + side * t_side * palm * aspect * 0.8
    tdir = side * t_side * 0.8 + up * 0.6
    _capsule(m, base, base + tdir * palm * srng.uniform(0.9, 1.3), palm * 0.4)
    if srng.random() < 0.6:  # a wrist toward the crop's edge
        _capsule(m, centre, centre - up * scale * 1.5, palm * aspect * 1.5)
    return m


def _fingers(
    shape: tuple[int, int], at: np.ndarray, centre: np.ndarray, scale: float, srng: np.random.Generator, rng
) -> tuple[np.ndarray, np.ndarray]:
    """2-5 finger bars, parallel or fanned, through ``at``: from outside the face into
    it (toward its ``centre``, give or take 60 degrees) when ``at`` is on its border,
    any way round inside it. Returns the anti-aliased canvas (as ``_canvas``) and the (H, W)
    float32 shading across each bar (a lit cylinder: 1 on its lit ridge, down to the
    bar's ``ambient`` at its edges; 1 everywhere for a flat bar)."""
    m = _canvas(shape)
    light = np.zeros_like(m)
    n = int(srng.integers(2, 6))
    width = scale * srng.uniform(0.065, 0.12)
    length = scale * srng.uniform(0.35, 0.8)
    pitch = width * srng.uniform(0.85, 1.4)  # below 1: the bars touch, soft seams between them
    fan = srng.uniform(0.03, 0.18) if srng.random() < 0.5 else 0.0  # radians between bars
    bend = srng.uniform(-0.25, 0.25)  # the same curl at each of two joints
    lengths = length * srng.uniform(0.8, 1.1, n)
    taper = srng.uniform(0.8, 1.0)
    reach = srng.uniform(0.0, 1.5) * length if srng.random() < 0.3 else 0.0  # bases run on, off the face
    towards = centre - at
    if np.linalg.norm(towards) > 0.15 * scale:  # a border: the fingers reach into the face
        angle = np.arctan2(towards[1], towards[0]) + np.clip(rng.normal(0, 0.6), -1.1, 1.1)
    else:
        angle = rng.uniform(-np.pi, np.pi)
    ambient = 1.0 if rng.random() < 0.3 else rng.uniform(0.5, 0.92)  # 1: flat, unshaded
    lx = rng.uniform(-0.7, 0.7)  # where the light comes from, across the bars
    levels = 8
    axis0 = np.array([np.cos(angle), np.sin(angle)])
    base0 = at - axis0 * length * rng.uniform(0.2, 0.6)
    for k in range(n):
        off = k - (n - 1) / 2
        a = angle + off * fan
        axis = np.array([np.cos(a), np.sin(a)])
        side = np.array([-axis[1], axis[0]])
        p = base0 + np.array([-axis0[1], axis0[0]]) * off * pitch - axis * reach
        pts = [p]
        seg = np.array([reach, *(lengths[k] * np.array([0.45, 0.3, 0.25]))])
        for j, step in enumerate(seg):
            turn = a + bend * max(j - 1, 0)
            pts.append(pts[-1] + np.array([np.cos(turn), np.sin(turn)]) * step)
        for j in range(levels):  # outer rims first, the lit ridge last
            t = 1 - j / levels  # 1 at the bar's edge, toward 0 on its ridge
            shade = ambient + (1 - ambient) * np.sqrt(1 - t**2)
            shift = side * lx * width * 0.5 * (1 - t)
            for s in range(len(pts) - 1):
                w = width * (1 - (1 - taper) * (s + 1) / len(seg)) * t
                if j == 0:
                    _capsule(m, pts[s], pts[s + 1], w)
                cv2.line(
                    light,
                    tuple(int(v) for v in (pts[s] + shift) * SS),
                    tuple(int(v) for v in (pts[s + 1] + shift) * SS),
                    int(round(255 * shade)),
                    max(1, int(w * SS)),
                    cv2.LINE_AA,
                )
    cover = cv2.resize(m, shape[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
    lit = cv2.resize(light, shape[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
    lit = cv2.GaussianBlur(lit, (0, 0), max(0.5, width * 0.08))
    cover = cv2.GaussianBlur(cover, (0, 0), max(0.5, width * 0.08))
    return m, np.clip(lit / np.maximum(cover, 1.0), ambient * 0.9, 1.0)


def _polygon(
    shape: tuple[int, int], centre: np.ndarray, scale: float, srng: np.random.Generator, rng
) -> np.ndarray:
    n = int(srng.integers(3, 10))
    ang = np.sort(srng.uniform(0, 2 * np.pi, n)) + rng.uniform(0, 2 * np.pi)
    rad = scale * srng.uniform(0.25, 0.6, n)
    pts = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * rad[:, None]
    m = _canvas(shape)
    cv2.fillPoly(m, [np.round(pts * SS).astype(np.int32)], 255, cv2.LINE_AA)
    return m


def _hair(
    shape: tuple[int, int], top: np.ndarray, scale: float, srng: np.random.Generator, rng
) -> np.ndarray:
    """Strands (quadratic curves) falling from above the brows across the face."""
    m = _canvas(shape)
    n = int(srng.integers(6, 40))
    width = srng.uniform(0.6, 2.5)
    side = rng.uniform(-1, 1)
    for _ in range(n):
        start = top + np.array(
            [srng.normal(side * scale * 0.3, scale * 0.25), -scale * srng.uniform(0.2, 0.5)]
        )
        end = start + np.array(
            [srng.normal(side * scale * 0.2, scale * 0.15), scale * srng.uniform(0.4, 1.1)]
        )
        mid = (start + end) / 2 + srng.normal(0, scale * 0.1, 2)
        t = np.linspace(0, 1, 12)[:, None]
        curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * mid + t**2 * end
        cv2.polylines(
            m, [np.round(curve * SS).astype(np.int32)], False, 255, max(1, int(width * SS)), cv2.LINE_AA
        )
    return m


def _glasses(shape: tuple[int, int], eyes: np.ndarray, srng: np.random.Generator, sun: bool) -> np.ndarray:
    """Frames around both eyes with a bridge and temples; dark lenses when ``sun``."""
    m = _canvas(shape)
    d = np.linalg.norm(eyes[1] - eyes[0])
    angle = np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
    axes = (int(d * srng.uniform(0.3, 0.45) * SS), int(d * srng.uniform(0.22, 0.35) * SS))
    thick = -1 if sun else max(1, int(d * srng.uniform(0.03, 0.09) * SS))
    for e in eyes:
        cv2.ellipse(m, tuple(int(v) for v in e * SS), axes, angle, 0, 360, 255, thick, cv2.LINE_AA)
    t = max(1, int(d * 0.05 * SS))
    u = (eyes[1] - eyes[0]) / max(d, 1e-6)
    a, b = eyes[0] + u * axes[0] / SS, eyes[1] - u * axes[0] / SS
    cv2.line(m, tuple(int(v) for v in a * SS), tuple(int(v) for v in b * SS), 255, t, cv2.LINE_AA)
    for e, s in ((eyes[0], -1), (eyes[1], 1)):
        a = e + s * u * axes[0] / SS
        cv2.line(
            m,
            tuple(int(v) for v in a * SS),
            tuple(int(v) for v in (a + s * u * d * 0.6) * SS),
            255,
            t,
            cv2.LINE_AA,
        )
    return m


def _mic(
    shape: tuple[int, int], mouth: np.ndarray, scale: float, srng: np.random.Generator, rng
) -> np.ndarray:
    """A microphone (a bar and a ball), a cup (an ellipse on a body) or a plain bar."""
    m = _canvas(shape)
    kind = srng.integers(3)
    tip = mouth + rng.normal(0, scale * 0.15, 2)
    ang = rng.uniform(-np.pi * 0.9, -np.pi * 0.1)
    away = -np.array([np.cos(ang), np.sin(ang)])  # toward the bottom of the crop
    if kind == 0:
        _capsule(m, tip, tip + away * max(shape) * 1.5, scale * srng.uniform(0.08, 0.16))
        cv2.circle(
            m,
            tuple(int(v) for v in tip * SS),
            int(scale * srng.uniform(0.12, 0.22) * SS),
            255,
            -1,
            cv2.LINE_AA,
        )
    elif kind == 1:
        w, h = scale * srng.uniform(0.2, 0.35), scale * srng.uniform(0.35, 0.6)
        c = tip + np.array([0, h * 0.5])
        cv2.rectangle(
            m,
            tuple(int(v) for v in (c - [w, h * 0.5]) * SS),
            tuple(int(v) for v in (c + [w, h]) * SS),
            255,
            -1,
        )
        cv2.ellipse(
            m,
            tuple(int(v) for v in (c - [0, h * 0.5]) * SS),
            (int(w * SS), int(w * 0.35 * SS)),
            0,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
        )
    else:
        _capsule(m, tip - away * max(shape), tip + away * max(shape), scale * srng.uniform(0.05, 0.2))
    return m


def _shade(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 1) a smooth light ramp over the occluder, 0.55-1.3."""
    gy, gx = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    d = rng.normal(size=2)
    ramp = (d[0] * gx[None, :] + d[1] * gy[:, None]) / max(np.linalg.norm(d), 1e-6)
    return (rng.uniform(0.85, 1.1) + rng.uniform(0.05, 0.25) * ramp)[..., None]


def draw_occluder(
    img: np.ndarray,
    lm: np.ndarray,
    rng: np.random.Generator,
    donor: Donor,
    held_out: bool,
    kind: str | None = None,
    at: np.ndarray | None = None,
    size: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``img`` (H, W, 3) uint8 with one occluder drawn over it, and the occluder's
    (H, W) float32 coverage in [0, 1]. ``lm`` (68, 2) places and sizes it on the face;
    a hand or finger bars go over a random part of the face, or over ``at``; ``size``
    scales it."""
    shape = img.shape[:2]
    kind = kind or str(rng.choice(KINDS, p=KIND_P))
    srng = np.random.default_rng(shape_number(rng, held_out))
    scale = size * float(np.linalg.norm(lm.max(0) - lm.min(0)))  # face size in pixels
    eyes = np.stack([lm[36:42].mean(0), lm[42:48].mean(0)])
    mouth, nose = lm[48:68].mean(0), lm[30]
    noise = (*shape, 3)
    if kind == "hand":
        if at is None:
            at = [mouth, nose, eyes.mean(0), lm[3], lm[13], lm[8]][int(rng.integers(6))] + rng.normal(
                0, scale * 0.15, 2
            )
        m = _hand(shape, at, scale, srng, rng)
        colour = donor.skin(rng, shape) * _shade(rng, shape) * rng.uniform(0.85, 1.15, 3)
    elif kind == "fingers":
        if at is None:  # the face's border (jaw, cheeks, temples) half the time
            cheeks = (lm[2] + lm[31]) / 2, (lm[14] + lm[35]) / 2
            inner = [mouth, nose, eyes.mean(0), lm[8], *cheeks]
            pick = lm[int(rng.integers(17))] if rng.random() < 0.5 else inner[int(rng.integers(len(inner)))]
            at = pick + rng.normal(0, scale * 0.05, 2)
        m, lit = _fingers(shape, np.asarray(at, float), lm[27:36].mean(0), scale, srng, rng)
        if rng.random() < 0.4:  # untextured: one skin colour
            colour = np.broadcast_to(donor.tone(rng), noise) + rng.normal(0, 1.5, noise)
        else:
            colour = donor.skin(rng, shape)
        colour = colour * rng.uniform(0.9, 1.1, 3) * (lit[..., None] * rng.uniform(1.0, 1.15))
        colour = colour * _shade(rng, shape)
        if rng.random() < 0.25:  # slightly out of focus (the edges too, below, one time in five)
            colour = cv2.GaussianBlur(np.ascontiguousarray(colour, np.float32), (0, 0), rng.uniform(0.5, 1.2))
    elif kind == "object":
        at = lm[int(rng.integers(68))] + rng.normal(0, scale * 0.2, 2)
        m = _polygon(shape, at, scale, srng, rng)
        colour = donor.texture(rng, shape) * _shade(rng, shape)
    elif kind == "hair":
        top = lm[17:27].mean(0) + rng.normal(0, scale * 0.05, 2)
        m = _hair(shape, top, scale, srng, rng)
        base = np.array(
            [[20, 15, 10], [60, 40, 25], [120, 85, 50], [190, 160, 110], [130, 60, 30]], np.float32
        )
        colour = base[srng.integers(len(base))] * rng.uniform(0.7, 1.3) + rng.normal(0, 12, noise)
    elif kind == "glasses":
        sun = srng.random() < 0.35
        m = _glasses(shape, eyes, srng, sun)
        tone = rng.uniform(0, 60, 3) if sun or srng.random() < 0.6 else rng.uniform(60, 220, 3)
        colour = np.broadcast_to(tone, noise) * _shade(rng, shape)
    else:
        m = _mic(shape, mouth, scale, srng, rng)
        tone = rng.uniform(10, 240, 3)
        colour = np.broadcast_to(tone, noise) * _shade(rng, shape) + rng.normal(0, 8, noise)
    alpha = cv2.resize(m, shape[::-1], interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if rng.random() < 0.2:  # out of focus or moving: soft edges
        alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 1.5) * scale / 110)  # a 128 crop: scale ~110
    out = img.astype(np.float32) * (1 - alpha[..., None]) + np.clip(colour, 0, 255) * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8), alpha


def occlude_one(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> np.ndarray:
    """One occluder from the training pool over ``img``: PRNet's training draws these
    (``python -m realtime.train --occluders``) so that its landmarks hold under a hand."""
    return draw_occluder(img, lm, rng, Donor(donor), held_out=False)[0]


def occlude(
    img: np.ndarray, lm: np.ndarray, rng: np.random.Generator, donors: list[Donor], held_out: bool, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` occluders over ``img``: the image and their combined (R, R) coverage."""
    cover = np.zeros(img.shape[:2], np.float32)
    for _ in range(n):
        img, a = draw_occluder(img, lm, rng, donors[int(rng.integers(len(donors)))], held_out)
        cover = 1 - (1 - cover) * (1 - a)
    return img, cover


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour and exposure changes, then blur or down/up-sampling, over the whole crop."""
    r = len(img)
    out = img.astype(np.float32) / 255.0
    out = out ** rng.uniform(0.7, 1.4) * rng.uniform(0.6, 1.3) * rng.uniform(0.85, 1.15, 3)
    u = rng.random()
    if u < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.5))
    elif u < 0.45:
        small = max(16, int(r * rng.uniform(0.35, 0.8)))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (r, r))
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def sample(
    img120: np.ndarray,
    foot120: np.ndarray,
    lm120: np.ndarray,
    affine: np.ndarray,
    rng: np.random.Generator,
    donors: list[Donor],
    held_out: bool,
    r: int,
    n: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One training pair: (R, R, 3) uint8 RGB crop with ``n`` occluders (None: 0, 1 or
    2 at random), and (R, R) float32 visibility (footprint times what the occluders
    leave uncovered). ``affine`` (2, 3) maps the 120-crop to the R-crop."""
    img = cv2.warpAffine(img120, affine, (r, r), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    foot = cv2.warpAffine(foot120.astype(np.float32), affine, (r, r), flags=cv2.INTER_LINEAR)
    lm = lm120 @ affine[:, :2].T + affine[:, 2]
    n = int(rng.choice([0, 1, 2], p=[0.2, 0.6, 0.2])) if n is None else n
    img, cover = occlude(img, lm, rng, donors, held_out, n)
    return photometric(img, rng), foot * (1 - cover)
