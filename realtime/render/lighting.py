"""Light from the live face: 2nd-order spherical harmonics fitted per face per frame.

Why a face is a good light probe: its normals (from the dense mesh) span most of a
hemisphere and skin is close to Lambertian, and a Lambertian surface's shading is
held to about 99 % by 9 spherical-harmonic coefficients (Ramamoorthi & Hanrahan
2001). So the colours of a few hundred sampled skin pixels, divided by an albedo
estimate, give 9 coefficients per colour channel by least squares in well under a
millisecond. The albedo of those samples is kept per track and refined every frame,
so freckles, beard shadow and brows stop biasing the light; its mean is pinned to a
typical skin (SKIN), which fixes the one thing a single picture cannot tell apart:
a dark face in bright light from a bright face in dim light.

Colours are linear with gamma 2 (square to linearise, square root to display): close
to sRGB, and as cheap in the shaders as here. Everything is BGR, like the frames.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from realtime.core.types import Reconstruction
from realtime.core.uv import UVLayout
from realtime.render.tracks import TrackMemory

#: Linear BGR albedo the mean skin sample is assumed to have (sRGB ~ (225, 175, 150)):
#: shading is then about 1 where a well exposed face is lit head-on.
SKIN = np.array([0.35, 0.47, 0.78])
SAMPLES = 400  # skin pixels per face per frame
SMOOTHING = 0.35  # weight of the newest frame in a track's running light
ALBEDO_RATE = 0.08  # weight of the newest frame in a track's running albedo
MIN_NZ = 0.2  # samples turned further from the camera are not used (grazing, occluded)
#: Ridge weights per coefficient (DC, 3 x linear, 5 x quadratic): a face sees only one
#: hemisphere of normals, so the quadratic band is pulled toward zero.
RIDGE = np.array([1e-4, 0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 0.1, 0.1])
ROUNDS = 4  # light-albedo alternations for a still photo and for a new face
SETTLE = 20  # a new track's light updates on its first frame, until it settles
#: A still photo's light (``estimate``: the swap's source) keeps each channel's gain over
#: its luminance within these. A photo whose lit cheek is clipped is sampled on its
#: shadow side alone, and its light then took the skin's colour (AFLW image00968: blue
#: 0.14, and a blue swap). Real lights stay inside: the test portraits 0.78-1.32, the
#: yellow kpa webcam 0.31-1.58 (the self-swaps lost 0.7 dB under a 0.5-1.6 bound). The
#: live light is not bounded: the drawn face must match the room's, coloured or not.
TINT = (0.25, 2.0)


def to_linear(bgr: np.ndarray) -> np.ndarray:
    """uint8 (or 0-255 float) BGR -> linear float32 in [0, 1] (gamma 2)."""
    c = np.asarray(bgr, np.float32) / 255.0
    return c * c


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals (x right, y down, z to the camera) -> (N, 9) real SH basis."""
    x, y, z = normals[:, 0], normals[:, 1], normals[:, 2]
    return np.stack(
        [
            np.full_like(x, 0.282095),
            0.488603 * y,
            0.488603 * z,
            0.488603 * x,
            1.092548 * x * y,
            1.092548 * y * z,
            0.315392 * (3 * z * z - 1),
            1.092548 * x * z,
            0.546274 * (x * x - y * y),
        ],
        1,
    ).astype(np.float32)


#: Basis constants, folded into the uniforms so the shaders multiply by monomials only.
_SH_CONST = np.array(
    [0.282095, 0.488603, 0.488603, 0.488603, 1.092548, 1.092548, 0.315392, 1.092548, 0.546274]
)


def shader_coefficients(light: np.ndarray) -> np.ndarray:
    """(9, 3) light -> (9, 3) float32 for ``u_sh`` in shaders/lighting.glsl, which
    evaluates them against (1, y, z, x, xy, yz, 3z^2 - 1, xz, x^2 - y^2)."""
    return (light * _SH_CONST[:, None]).astype(np.float32)


def shade(light: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """(N, 3) linear BGR shading of unit normals under a (9, 3) light, >= 0."""
    return np.maximum(sh_basis(normals) @ light.astype(np.float32), 0.0)


def frontal_skin(light: np.ndarray) -> np.ndarray:
    """(3,) linear BGR: the typical skin (SKIN) turned to the camera under ``light``, the
    skin colour a photo or a live face shows (the swap's tone compares the two)."""
    return shade(light, np.array([[0.0, 0.0, 1.0]]))[0] * SKIN


def exposure(image: np.ndarray) -> float:
    """A frame's or photo's mean linear luminance (every 16th pixel each way): how bright
    the camera made the whole picture (the swap's source tone is relative to it)."""
    return float(to_linear(image[::16, ::16]).reshape(-1, 3).mean(0) @ LUMA)


def directional_light(direction: np.ndarray, ambient: float, strength: float, colour=(1.0, 1.0, 1.0)):
    """(9, 3) SH shading of a white-ish distant light from ``direction`` (toward the
    light, frame axes) plus ambient: ambient + strength * max(0, n . d), to order 2
    (the clamped cosine's bands: A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4)."""
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    band = np.pi * np.array([1.0, 2 / 3, 2 / 3, 2 / 3, 1 / 4, 1 / 4, 1 / 4, 1 / 4, 1 / 4])
    coeff = strength * band * sh_basis(d[None])[0]
    coeff[0] += ambient / 0.282095
    return coeff[:, None] * np.asarray(colour, np.float64)[None]


def _directions(count: int = 1500) -> np.ndarray:
    """(count, 3) directions spread evenly over the sphere (a Fibonacci lattice)."""
    i = np.arange(count) + 0.5
    z = 1 - 2 * i / count
    phi = np.pi * (1 + 5**0.5) * i
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


_DIRECTIONS = _directions()
_DIRECTION_BASIS = sh_basis(_DIRECTIONS).astype(np.float64)


def dominant_direction(light: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit direction (frame axes) whose normal the light shades brightest, and how
    directional the light is (1 - darkest / brightest shading of the luminance, 0 for
    flat light). Taken from the whole 9-term shading, not the linear band alone: on a
    face's hemisphere of normals the bands trade energy, and the brightest direction
    is what a highlight needs."""
    lum = _DIRECTION_BASIS @ (light @ LUMA)
    k = int(np.argmax(lum))
    return _DIRECTIONS[k].copy(), float(1 - max(lum.min(), 0.0) / max(lum[k], 1e-9))


class MeshNormals:
    """Unit normals of the dense mesh from its UV grid: the cross product of central
    differences ``step`` layout pixels apart along u and v (the nearest face pixel
    stands in past the face's edge). A wider step than the triangles' gives smoother
    shading, and gathering is several times faster than accumulating face normals."""

    def __init__(self, layout: UVLayout, step: int | None = None):
        r = layout.resolution
        step = step if step is not None else max(1, r // 64)
        inside = layout.face_mask
        _, labels = cv2.distanceTransformWithLabels(
            (~inside).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
        )
        # labels number the zero (face) pixels in row-major scan order: the vertex order.
        nearest = (labels - 1).astype(np.int64)
        rows, cols = np.divmod(layout.face_ind, r)
        self.right = nearest[rows, np.minimum(cols + step, r - 1)].astype(np.int32)
        self.left = nearest[rows, np.maximum(cols - step, 0)].astype(np.int32)
        self.down = nearest[np.minimum(rows + step, r - 1), cols].astype(np.int32)
        self.up = nearest[np.maximum(rows - step, 0), cols].astype(np.int32)
        self._subsets: dict[int, tuple[np.ndarray, tuple[np.ndarray, ...]]] = {}
        # Which way the cross product points for this layout: toward the camera (+z)
        # on the canonical face.
        self.sign = 1.0
        self.sign = 1.0 if self(layout.canonical)[:, 2].mean() > 0 else -1.0

    def _neighbours(self, rows: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """The four neighbour index arrays for ``rows``, gathered once per rows array (the
        renderer passes the same few every frame), not on every call."""
        if rows is None:
            return self.right, self.left, self.down, self.up
        hit = self._subsets.get(id(rows))
        if hit is None or hit[0] is not rows:
            hit = (rows, tuple(a[rows] for a in (self.right, self.left, self.down, self.up)))
            if len(self._subsets) >= 8:
                self._subsets.clear()
            self._subsets[id(rows)] = hit
        return hit[1]

    def __call__(self, vertices: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(F, 3) vertices -> (F, 3) float32 unit normals, or only those of ``rows``.
        Works on coordinate rows (3, F): gathering along a contiguous axis with
        np.take is several times faster than fancy-indexing (F, 3) rows."""
        vt = np.ascontiguousarray(np.asarray(vertices, np.float32).T)
        right, left, down, up = self._neighbours(rows)
        du = np.take(vt, right, axis=1) - np.take(vt, left, axis=1)
        dv = np.take(vt, down, axis=1) - np.take(vt, up, axis=1)
        n = np.empty_like(du)
        n[0] = du[1] * dv[2] - du[2] * dv[1]
        n[1] = du[2] * dv[0] - du[0] * dv[2]
        n[2] = du[0] * dv[1] - du[1] * dv[0]
        n *= self.sign / np.maximum(np.sqrt((n * n).sum(0)), 1e-9)
        return np.ascontiguousarray(n.T)


def skin_rows(layout: UVLayout, exclude: np.ndarray, count: int = SAMPLES) -> np.ndarray:
    """Up to ``count`` vertex rows spread evenly over the skin: inside the landmarks'
    hull and outside ``exclude`` (an (S, S) UV mask of eyes, brows, mouth...)."""
    size = exclude.shape[0]
    uv = np.round(layout.vertex_uv * (size - 1)).astype(np.int64)
    rows = np.flatnonzero(~exclude[uv[:, 1], uv[:, 0]])
    pick = np.linspace(0, len(rows) - 1, min(count, len(rows))).astype(np.int64)
    return rows[pick]


LUMA = np.array([0.11, 0.59, 0.30])  # BGR weights of luminance


def fit_light(
    colour: np.ndarray,
    normals: np.ndarray,
    albedo: np.ndarray,
    weight: np.ndarray,
    prior: np.ndarray | None = None,
    tint: tuple[float, float] | None = None,
) -> np.ndarray:
    """(9, 3) light: least squares of colour ~ albedo * (basis(n) @ light), with the
    light one colour in every direction (9 luminance coefficients times 3 channel
    gains). Per-channel fits of 27 free coefficients from one hemisphere of normals
    trade colour between directions and paint the face in false colours; one colour
    is stable and close to what a room looks like. Ridge-regularised (RIDGE) and
    weighted; samples that fit badly (hair, a hand, a specular highlight) are turned
    down by their residual under ``prior`` (a track's last light), or without one by a
    first fit."""
    basis = sh_basis(normals).astype(np.float64)
    lum, a_lum = colour @ LUMA, albedo @ LUMA
    m = basis * a_lum[:, None]
    w = weight

    def solve(w: np.ndarray) -> np.ndarray:
        mw = m * w[:, None]
        gram = mw.T @ m
        gram[np.arange(9), np.arange(9)] += RIDGE * (np.trace(gram) / 9 + 1e-9)
        return np.linalg.solve(gram, mw.T @ lum)

    s = prior @ LUMA if prior is not None else solve(w)
    resid = np.abs(lum - m @ s)
    scale = 2.5 * float((resid * weight).sum() / max(weight.sum(), 1e-9)) + 1e-4
    w = weight / (1.0 + (resid / scale) ** 2)
    s = solve(w)
    shading = np.maximum(basis @ s, 0.0)[:, None] * albedo
    gain = (w[:, None] * colour * shading).sum(0) / np.maximum((w[:, None] * shading * shading).sum(0), 1e-12)
    gain /= max(float(gain @ LUMA), 1e-6)
    if tint is not None:
        gain = np.clip(gain, *tint)
        gain /= max(float(gain @ LUMA), 1e-6)
    return s[:, None] * gain[None, :]


def pixels_at(image: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) uint8 frame pixels nearest to (K, 2) points, and (K,) whether each says
    something of the light: inside the frame and neither clipped nor black."""
    h, w = image.shape[:2]
    x = (xy[:, 0] + 0.5).astype(np.int64)  # nearest pixel (x >= -0.5 on the frame)
    y = (xy[:, 1] + 0.5).astype(np.int64)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    pix = image[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)]
    top = pix.max(1)
    return pix, inside & (top < 250) & (top > 4)


def chroma_spread(albedo: np.ndarray) -> float:
    """How colourful a face's skin is: the RMS distance of (K, 3) albedo samples' log
    chroma (log colour minus log luminance) from their median. A tint of the light moves
    every sample's chroma alike, so it does not count: a grey or sepia photo gives under
    0.01, the colour portraits of the test media 0.13 to 0.22."""
    if len(albedo) == 0:
        return 0.0
    log = np.log(np.maximum(albedo, 1e-4))
    chroma = log - np.log(np.maximum(albedo @ LUMA, 1e-4))[:, None]
    return float(np.sqrt(((chroma - np.median(chroma, 0)) ** 2).sum(1).mean()))


class _Track:
    __slots__ = ("albedo", "light", "seen", "colour")

    def __init__(self, albedo: np.ndarray, light: np.ndarray, seen: np.ndarray):
        self.albedo, self.light, self.seen = albedo, light, seen
        self.colour: np.ndarray = np.zeros((0, 3))  # the latest frame's usable skin samples, linear BGR


class LightEstimator:
    """Per face per frame: the light (9, 3) on a live face, smoothed per track, from
    SAMPLES skin pixels and the mesh's normals; each track also keeps its samples'
    albedo, refined a little each frame. ``update`` takes well under a millisecond."""

    def __init__(self, layout: UVLayout, exclude: np.ndarray, count: int = SAMPLES):
        self.normals = MeshNormals(layout)
        self.rows = skin_rows(layout, exclude, count)
        # Albedo must not take up shading: its log is kept free of the SH basis over the
        # canonical face's normals (the constant aside, which SKIN pins).
        basis = sh_basis(self.normals(layout.canonical, self.rows))[:, 1:].astype(np.float64)
        self.q, _ = np.linalg.qr(basis - basis.mean(0))
        self.tracks = TrackMemory()  # of _Track

    def fresh(self) -> LightEstimator:
        """An estimator sharing this one's fixed parts (normals, sample rows, basis)
        with no faces yet: a preview's faces kept apart from a live run's."""
        twin = copy.copy(self)
        twin.tracks = TrackMemory()
        return twin

    def sample(self, image: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linear colours, normals and weights (0 = unusable) of the skin samples."""
        pix, usable = pixels_at(image, vertices[self.rows, :2])
        n = self.normals(vertices, self.rows)
        weight = usable.astype(np.float64) * np.clip((n[:, 2] - MIN_NZ) / 0.3, 0.0, 1.0)
        return to_linear(pix).astype(np.float64), n, weight

    def _normalise(self, albedo: np.ndarray) -> np.ndarray:
        """Albedo free of shading, scaled so that its geometric mean is SKIN: the
        arithmetic mean let the few samples the light cannot explain (a highlight, a
        shadowed edge, both clipped) set the scale, and a normally lit face then got
        four times its light (a white swap, a blown-out mask)."""
        log = np.log(np.clip(albedo, 1e-3, 4.0))
        log -= self.q @ (self.q.T @ (log - log.mean(0)))
        return np.exp(log - log.mean(0)) * SKIN

    def estimate(self, image: np.ndarray, vertices: np.ndarray, rounds: int = ROUNDS):
        """A still photo's (9, 3) light and sample albedo, from scratch (alternating
        light and albedo ``rounds`` times): e.g. the swap's source photo."""
        return self.fit(*self.sample(image, vertices), rounds, TINT)

    def photo_spread(self, image: np.ndarray, vertices: np.ndarray) -> float:
        """``chroma_spread`` of a still photo's face, measured as ``spread`` measures a
        track's (the samples it could use, their albedo from ``estimate``)."""
        colour, n, weight = self.sample(image, vertices)
        return chroma_spread(self.fit(colour, n, weight)[1][weight > 0.5])

    def fit(
        self,
        colour: np.ndarray,
        n: np.ndarray,
        weight: np.ndarray,
        rounds: int = ROUNDS,
        tint: tuple[float, float] | None = None,
    ):
        """``estimate`` on samples already taken (``sample``); ``tint``: bounds on the
        light's colour (fit_light)."""
        albedo = np.tile(SKIN, (len(colour), 1))
        light = fit_light(colour, n, albedo, weight, tint=tint)
        for _ in range(rounds - 1):
            s = shade(light, n)
            albedo = self._normalise(np.where(s > 1e-3, colour / np.maximum(s, 1e-3), SKIN))
            light = fit_light(colour, n, albedo, weight, tint=tint)
        return light, albedo

    def update(self, image: np.ndarray, rec: Reconstruction) -> np.ndarray:
        """This face's light this frame, (9, 3) linear BGR, smoothed over its track."""
        colour, n, weight = self.sample(image, rec.vertices)
        track = self._update(colour, n, weight, rec.track_id)
        track.colour = colour[weight > 0]
        return track.light

    def skin_colour(self, track_id: int) -> np.ndarray:
        """(3,) linear BGR: the median of the usable skin samples ``update`` read on this
        track's latest frame (zeros for an unknown track or none usable). For the swap,
        which compares the live frame with its skin: the pixels are sampled once."""
        track = self.tracks.get(track_id)
        if track is None or not len(track.colour):
            return np.zeros(3)
        return np.median(track.colour, axis=0)

    def _update(self, colour: np.ndarray, n: np.ndarray, weight: np.ndarray, track_id: int) -> _Track:
        """``update`` on samples already taken: the track, its light smoothed."""
        track = self.tracks.get(track_id)
        if track is None or weight.sum() < 20:
            if weight.sum() >= 20:  # a new face starts as a still photo would (the swap's source)
                light, albedo = self.fit(colour, n, weight)
            else:
                light, albedo = _flat(), np.tile(SKIN, (len(colour), 1))
            track = self.tracks.put(track_id, _Track(albedo, light, weight > 0.5))
            for _ in range(SETTLE if weight.sum() >= 20 else 0):
                # The light settled on this first frame as the track's smoothing would
                # settle it (its albedo kept), so a still face drawn again is drawn the same.
                new = fit_light(colour, n, track.albedo, weight, track.light)
                track.light = track.light + SMOOTHING * (new - track.light)
            return track
        new = fit_light(colour, n, track.albedo, weight, track.light)
        track.light = track.light + SMOOTHING * (new - track.light)
        s = shade(track.light, n)
        seen = (weight > 0.5) & (s > 1e-3).all(1)
        observed = colour[seen] / np.maximum(s[seen], 1e-3)
        albedo = track.albedo.copy()
        albedo[seen] += ALBEDO_RATE * (observed - albedo[seen])
        track.albedo = self._normalise(albedo)
        track.seen |= seen
        return track

    def spread(self, track_id: int) -> float | None:
        """``chroma_spread`` of a track's running albedo over the samples it has seen;
        None for an unknown track or one seen too little to say."""
        track = self.tracks.get(track_id)
        if track is None or track.seen.sum() < 20:
            return None
        return chroma_spread(track.albedo[track.seen])


def _flat() -> np.ndarray:
    """Plain light from the front, shading 1 on a face turned to the camera."""
    return directional_light(np.array([0.0, 0.0, 1.0]), 0.35, 0.65)
