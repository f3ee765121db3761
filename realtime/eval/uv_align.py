"""The swap source's feature alignment in UV (realtime.render.effects.swap_align):
``python -m realtime.eval uv-align`` measures it, ``--build`` learns its model.

The measure, per feature: an independent reader, MediaPipe Face Mesh (in its own
venv, through realtime.peers: ``python -m realtime.peers --setup``), reads the source
photo's eyes, brows, nose, lips (the 68 scheme) and the two nostril openings; each point
is carried into UV through the source's mesh (the point of the mesh's front surface
under it), then through the aligner's warp, and compared with the layout's place for
it, in texels of a 256 x 256 texture. Before: through the mesh alone.

The layout's places are where that same reader puts each feature on faces whose mesh
is right: AFLW training crops through their 3DMM fits, the median over the crops with a
closed mouth (the layout's lips meet). So the reader's own habits (its brows mark the
upper edge, 300-W's the middle) cancel, and the nostrils, which the 68 scheme has
none of, get a place. The build learns the aligner from the same crops and points.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from realtime.core.paths import CACHE, REPO, SHARED_DATA
from realtime.core.uv import UVLayout
from realtime.render.effects.swap_align import (
    GROUPS,
    MODEL,
    SIDE,
    STAGES,
    FeatureAligner,
    describe,
    detail,
    mirror_points,
    stage_images,
)
from realtime.render.effects.uvdraw import uv_landmarks

#: MediaPipe Face Mesh vertices around each nostril opening (the subject's right, then
#: left), checked by eye on the shared portraits; their mean is the nostril.
NOSTRILS = ((79, 166, 75, 60), (309, 392, 305, 290))
#: The features reported, as point indices (68 scheme; 68, 69 the nostrils).
FEATURES = {
    "eyes": list(range(36, 48)),
    "brows": list(range(17, 27)),
    "nose": list(range(27, 36)),
    "nostrils": [68, 69],
    "lips": list(range(48, 68)),
}
UPPER_IN, LOWER_IN = [61, 62, 63], [65, 66, 67]  # the inner lips, above and below the mouth's hole
#: How far (texels at SIDE) the learning's guesses scatter from each feature's place: as
#: far as the network's meshes put the features (the lips further: a smile's open mouth).
SPREAD = {"eye_l": 2.5, "eye_r": 2.5, "brow_l": 2.5, "brow_r": 2.5, "nose": 2.5, "lips": 4.0}
CLOSED = 0.03  # inner-lip gap over the eye distance below which a crop's mouth is closed
SOURCES = ("obama_portrait.jpg", "biden_portrait.jpg", "miranda_portrait.png", "astronaut.png")


class MeshReader:
    """MediaPipe Face Mesh (refined, whole mesh) in its own process: 70 points a face."""

    def __init__(self):
        from realtime.core.types import UserError
        from realtime.peers.workers import Worker, worker_command

        cmd, env, why = worker_command("mediapipe-mesh")
        if cmd is None:
            raise UserError(f"MediaPipe {why}")
        self.work = Path(tempfile.mkdtemp(prefix="uv-align-"))
        self.worker = Worker("mediapipe", cmd, self.work / "mediapipe.log", env)

    def read(self, images: list[np.ndarray]) -> list[np.ndarray | None]:
        """Each image's face nearest its centre as (70, 2) pixels, or None."""
        from realtime.peers.mediapipe_peer import to_68

        out: list[np.ndarray | None] = []
        for start in range(0, len(images), 200):
            chunk = images[start : start + 200]
            if len({im.shape for im in chunk}) > 1:
                for im in chunk:
                    out += self.read([im])
                continue
            np.save(self.work / "frames.npy", np.stack(chunk))
            self.worker.ask(cmd="open", frames=str(self.work / "frames.npy"), video=False)
            faces = self.worker.ask(cmd="run", start=0, stop=len(chunk))["faces"]
            for found, im in zip(faces, chunk, strict=True):
                if not found:
                    out.append(None)
                    continue
                centre = np.array(im.shape[1::-1]) / 2
                mesh = min((np.asarray(f) for f in found), key=lambda m: np.linalg.norm(m.mean(0) - centre))
                out.append(np.vstack([to_68(mesh), [mesh[list(n)].mean(0) for n in NOSTRILS]]))
        return out

    def close(self) -> None:
        self.worker.close()


def photo_to_uv(layout: UVLayout, vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(70, 2) photo points -> texels of a SIDE texture: the UV of the mesh's front
    surface under each; a point over a hole (an open mouth the mesh did not open as far)
    takes the UV of the nearest point of the nearest triangle. The inner lips take their
    own lip's side of the mouth's hole (UPPER_IN above it, LOWER_IN below): where the
    mesh's mouth is shut both lips lie under the point, and the nearer one is not the
    point's. (Extrapolating a thin lip triangle's coordinates instead threw an open
    mouth's inner lips 200 texels away.)"""
    tri = layout.triangles
    uv = layout.vertex_uv.astype(np.float64) * (SIDE - 1)
    k = uv_landmarks(layout, SIDE)
    mid = (k[UPPER_IN, 1].mean() + k[LOWER_IN, 1].mean()) / 2
    tri_v = uv[tri, 1].mean(1)
    side = {i: tri_v < mid for i in UPPER_IN} | {i: tri_v > mid for i in LOWER_IN}
    a, b, c = (vertices[tri[:, k]].astype(np.float64) for k in range(3))
    e0, e1 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2]
    den = e0[:, 0] * e1[:, 1] - e1[:, 0] * e0[:, 1]
    ok = np.abs(den) > 1e-9
    den = np.where(ok, den, 1.0)
    out = np.full((len(points), 2), np.nan)
    for i, p in enumerate(np.asarray(points, np.float64)):
        usable = ok & side.get(i, True)
        w0, w1, w2 = _barycentric(p, a[:, :2], e0, e1, den)
        z = w0 * a[:, 2] + w1 * b[:, 2] + w2 * c[:, 2]
        inside = usable & (w0 >= -1e-6) & (w1 >= -1e-6) & (w2 >= -1e-6)
        if inside.any():
            j = np.flatnonzero(inside)[np.argmax(z[inside])]
            w = np.array([w0[j], w1[j], w2[j]])
        else:
            j, q = _nearest_triangle(p, a[usable, :2], b[usable, :2], c[usable, :2])
            j = np.flatnonzero(usable)[j]
            w = np.array(_barycentric(q, a[j, :2], e0[j], e1[j], den[j]))
        out[i] = w @ uv[tri[j]]
    return out


def _barycentric(
    p: np.ndarray, a: np.ndarray, e0: np.ndarray, e1: np.ndarray, den: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Barycentric coordinates of 2D point ``p`` in triangles (a, a + e0, a + e1)."""
    d = p - a
    w1 = (d[..., 0] * e1[..., 1] - e1[..., 0] * d[..., 1]) / den
    w2 = (e0[..., 0] * d[..., 1] - d[..., 0] * e0[..., 1]) / den
    return 1 - w1 - w2, w1, w2


def _nearest_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[int, np.ndarray]:
    """Of 2D triangles (T, 2) each, none containing ``p``: the index of the one whose
    edge comes nearest ``p``, and that nearest point."""
    best = (np.inf, 0, p)
    for s, e in ((a, b), (b, c), (c, a)):
        d = e - s
        t = np.clip(((p - s) * d).sum(1) / np.maximum((d * d).sum(1), 1e-12), 0.0, 1.0)
        q = s + t[:, None] * d
        dist = np.linalg.norm(q - p, axis=1)
        j = int(np.argmin(dist))
        if dist[j] < best[0]:
            best = (float(dist[j]), j, q[j])
    return best[1], best[2]


def through(flow: np.ndarray, points: np.ndarray, rounds: int = 30) -> np.ndarray:
    """Where texture points land after the aligner's warp: q with q + flow(q) = p
    (``flow`` at SIDE)."""
    p = points.astype(np.float32)
    q = p.copy()
    for _ in range(rounds):
        f = cv2.remap(flow, np.ascontiguousarray(q[:, :1]), np.ascontiguousarray(q[:, 1:]), cv2.INTER_LINEAR)
        q = p - f[:, 0]
    return q


def errors(points: np.ndarray, places: np.ndarray) -> dict[str, float]:
    """Mean distance (texels at SIDE) of each feature's points from their places."""
    return {k: float(np.linalg.norm(points[ix] - places[ix], axis=1).mean()) for k, ix in FEATURES.items()}


# -- measuring ----------------------------------------------------------------------------
def measure(layout: UVLayout, reconstruct, reader: MeshReader, photos: dict[str, np.ndarray]) -> dict:
    """Per source: each feature's error before and after the alignment (see the module
    docstring), and the worst point's. ``reconstruct(photo, name)``: the source's face
    as the app fits it (FaceProcessor.reconstruct_photo over PHOTO_CROPS)."""
    from realtime.render.effects.swap import FaceSwap

    aligner = FeatureAligner.load()
    out = {}
    for name, photo in photos.items():
        pts = reader.read([photo])[0]
        if pts is None:
            out[name] = {"skipped": "MediaPipe found no face"}
            continue
        rec = reconstruct(photo, name)
        swap = FaceSwap(layout, photo, rec)
        prepared = swap.prepared
        assert prepared is not None
        before = photo_to_uv(layout, rec.vertices, pts)
        after = before if prepared.flow is None else through(prepared.flow, before)
        worst = np.linalg.norm(after - aligner.places, axis=1)
        out[name] = {
            "before": errors(before, aligner.places),
            "after": errors(after, aligner.places),
            "worst_point": int(np.argmax(worst[sorted(i for ix in FEATURES.values() for i in ix)])),
        }
    return out


def table(result: dict) -> str:
    lines = [f"{'source':<22}" + "".join(f"{k:>16}" for k in FEATURES)]
    for name, r in result.items():
        if "after" not in r:
            lines.append(f"{name:<22}{r.get('skipped', '')}")
            continue
        cells = "".join(f"{r['before'][k]:>8.2f} ->{r['after'][k]:>5.2f}" for k in FEATURES)
        lines.append(f"{name:<22}{cells}")
    lines.append("texels at 256 px UV, mean over each feature's points: before -> after the alignment")
    return "\n".join(lines)


# -- building -----------------------------------------------------------------------------
def training_data(reader: MeshReader, layout: UVLayout, count: int, seed: int = 0):
    """(textures (N, SIDE, SIDE) uint8 grey, points (N, 70, 2) texels): near-frontal
    AFLW training crops (4x upscaled, as MediaPipe reads them best) unwrapped through
    their 3DMM fits, and MediaPipe's points carried into them."""
    from realtime.core.uv import load_bfm
    from realtime.live.decode import Decoder
    from realtime.render.effects.swap_source import position_grid, upsample_grid
    from realtime.train.groundtruth import MapMaker, read_crops

    with np.load(SHARED_DATA / "train" / "aflw_teacher_params.npz") as f:
        names, params, nme = f["names"], f["params"], f["nme21"]
    with np.load(SHARED_DATA / "train" / "aflw_crops_labels21.npz") as f:
        yaw = f["yaw"]
    rng = np.random.default_rng(seed)
    pick = rng.choice(np.flatnonzero((np.abs(yaw) < 25) & ~(nme > 0.1)), count, replace=False)
    maker = MapMaker(load_bfm(SHARED_DATA / "bfm" / "bfm_noneck_uv.npz"), layout.resolution)
    decoder = Decoder(layout)
    up = 4
    to_big = np.array([[[up, 0, 0.5 * up - 0.5], [0, up, 0.5 * up - 0.5]]])
    textures, points = [], []
    for start in range(0, count, 200):
        rows = pick[start : start + 200]
        crops = read_crops(names[rows])[..., ::-1]
        big = [cv2.resize(c, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC) for c in crops]
        for i, image, found in zip(rows, big, reader.read(big), strict=True):
            if found is None:
                continue
            maps = maker.maps(params[i][None], to_big).numpy()
            v = decoder.decode(maps, np.array([[[1.0, 0, 0], [0, 1, 0]]]), [0])[0].vertices
            pos = upsample_grid(position_grid(layout, v), SIDE)
            colour = cv2.remap(
                image, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            textures.append(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
            points.append(photo_to_uv(layout, v, found))
        print(f"uv-align: {len(textures)} crops read", file=sys.stderr)
    return np.array(textures), np.array(points, np.float32)


def places_of(points: np.ndarray) -> np.ndarray:
    """The layout's places: the median point over the crops with a closed mouth."""
    iod = np.linalg.norm(points[:, 36:42].mean(1) - points[:, 42:48].mean(1), axis=1)
    closed = np.linalg.norm(points[:, 62] - points[:, 66], axis=1) < CLOSED * iod
    median = np.median(points, 0)
    typical = (np.linalg.norm(points[:, 17:] - median[17:], axis=-1) < 15).all(1)
    return np.median(points[closed & typical], 0).astype(np.float32)


def train(textures: np.ndarray, points: np.ndarray, places: np.ndarray, seed: int = 0, starts: int = 3):
    """The cascade's regressors (per stage, per group: ridge regression from patches to
    the remaining move), on each crop and its mirror image from ``starts`` guesses
    scattered about the places as the network's meshes scatter (SPREAD texels a
    feature, 7 % in size, 1.5 texels the whole face). A group is learned only from crops whose
    points of it are near their places (15 texels; the lips 35: open mouths)."""
    rng = np.random.default_rng(seed)
    images, guess, truth = [], [], []
    for tex, pts in zip(textures, points, strict=True):
        for mirrored in (False, True):
            d = detail(np.ascontiguousarray(tex[:, ::-1]) if mirrored else tex)
            y = mirror_points(pts) if mirrored else pts
            staged = stage_images(d)
            for _ in range(starts):
                x = places.copy()
                for g, ix in GROUPS.items():
                    c = x[ix].mean(0)
                    x[ix] = c + (x[ix] - c) * (1 + rng.normal(0, 0.07, 2)) + rng.normal(0, SPREAD[g], 2)
                x += rng.normal(0, 0.5, x.shape) + rng.normal(0, 1.5, 2)
                images.append(staged)
                guess.append(x)
                truth.append(y)
    cur, truth = np.array(guess, np.float32), np.array(truth, np.float32)
    valid = {
        g: (
            np.isfinite(truth[:, ix]).all((1, 2))
            & (np.abs(truth[:, ix] - places[ix]) < (35 if g == "lips" else 15)).all((1, 2))
        )
        for g, ix in GROUPS.items()
    }
    stages = []
    for k, stage in enumerate(STAGES):
        feats = [describe(im, c, stage) for im, c in zip(images, cur, strict=True)]
        regressors = {}
        for g, ix in GROUPS.items():
            x = np.stack([f[g] for f in feats]).astype(np.float64)
            y = (truth[:, ix] - cur[:, ix]).reshape(len(cur), -1).astype(np.float64)
            v = valid[g]
            lhs = x[v].T @ x[v] + 30.0 * np.diag(np.r_[np.ones(x.shape[1] - 1), 0.0])
            regressors[g] = np.linalg.solve(lhs, x[v].T @ y[v]).astype(np.float32)
            cur[:, ix] += (x @ regressors[g]).reshape(len(cur), len(ix), 2).astype(np.float32)
        err = {
            g: round(float(np.linalg.norm(cur - truth, axis=-1)[valid[g]][:, ix].mean()), 2)
            for g, ix in GROUPS.items()
        }
        print(f"uv-align: stage {k}: {err}", file=sys.stderr)
        stages.append(regressors)
    return stages


def build(layout: UVLayout, count: int, out: Path) -> dict:
    """Learn the aligner from ``count`` crops (85 % to learn, the rest to check) and save it."""
    cached = CACHE / "uv-align" / f"crops-{count}.npz"  # MediaPipe's reading, kept: learning again is cheap
    if cached.exists():
        with np.load(cached) as f:
            textures, points = f["textures"], f["points"]
    else:
        reader = MeshReader()
        try:
            textures, points = training_data(reader, layout, count)
        finally:
            reader.close()
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cached, textures=textures, points=points)
    places = places_of(points)
    n = int(0.85 * len(textures))
    aligner = FeatureAligner(places, train(textures[:n], points[:n], places))
    held = {"before": [], "after": []}
    for tex, pts in zip(textures[n:], points[n:], strict=True):
        if np.isfinite(pts).all() and (np.abs(pts[17:] - places[17:]) < 15).all():
            held["before"].append(errors(pts, places))
            found = aligner.locate(tex)
            held["after"].append(errors(pts - (found - places), places))
    out.parent.mkdir(parents=True, exist_ok=True)
    aligner.save(out)
    summary = {k: {f: float(np.mean([r[f] for r in v])) for f in FEATURES} for k, v in held.items()}
    return {"crops": len(textures), "learned_on": n, "held_out": len(held["after"]), **summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.eval uv-align",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--build", action="store_true", help="learn the aligner's model (MediaPipe, ../shared)")
    ap.add_argument("--crops", type=int, default=3000, help="training crops the build reads")
    ap.add_argument("--model", type=Path, default=REPO / "realtime" / "render" / "data" / MODEL.name)
    ap.add_argument("--sources", nargs="*", default=list(SOURCES), help="photos in media/ to measure")
    ap.add_argument("--out", type=Path, default=Path("out/eval"))
    args = ap.parse_args(argv)
    from realtime.core.weights import load_bundle

    bundle = load_bundle(None)
    if args.build:
        res = build(bundle.layout, args.crops, args.model)
        print(json.dumps(res, indent=2))
        return 0
    from realtime.live.faces import PHOTO_CROPS, FaceProcessor

    photos = {n: cv2.imread(str(SHARED_DATA / "media" / n)) for n in args.sources}
    reader = MeshReader()
    with FaceProcessor.from_bundle(bundle, "eager", "cpu") as processor:
        try:
            res = measure(
                bundle.layout,
                lambda p, n: processor.reconstruct_photo(p, n, crops=PHOTO_CROPS),
                reader,
                photos,
            )
        finally:
            reader.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "uv_align.json").write_text(json.dumps(res, indent=2))
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
