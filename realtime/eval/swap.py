"""Swap-quality benchmark: ``python -m realtime.eval swap``.

The face swap is judged by what a user would check, each as one number:

* identity: a face-recognition network (dlib's ResNet, 128-d embeddings; under 0.6
  usually means "same person") compares the output face with the source photo and
  with the original target face, on pairs of different people (frontal photos of the
  AFLW2000-3D dev split; a pair the network itself calls one person is skipped). A
  swap that works is nearer the source than the target.
* self-swap fidelity: a clip swapped with one of its own frames as the source should
  barely change: PSNR and SSIM of the face region (the hull of the input's 68
  landmarks) against the input. Relit controls: a portrait re-shaded by a known light
  on its own mesh, swapped with the unlit portrait as source, should come out lit
  like the relit input, so the swap's light is the room's and not the photo's.
* edge ratio: gradient energy in a band across the blend boundary (the landmark
  hull's edge), output over input: above 1 is a visible seam.
* flicker ratio: mean frame-to-frame change of the face region, output over input.

Controls: passthrough (effect none: the measuring itself, expected lossless) and the
swap with a flat grey source texture (what a self-swap must beat). Clips are upscaled
as a webcam would show them (carphone to 1280x720, the benchmark's HD clip). It writes
OUT/swap_quality.json and a contact sheet OUT/swap_quality.png (rows: source | input |
output). Identity needs the ``eval`` extra (dlib-bin, face-recognition-models); without
it the rest still runs and the JSON says why identity is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.core.paths import SHARED_DATA
from realtime.core.types import Frame, Reconstruction, UserError
from realtime.eval.aflw2000 import crop_affine
from realtime.eval.identity import SAME_PERSON, Identity, IdentityUnavailable
from realtime.eval.measures import boundary_band, face_hull, gradient_energy, psnr, ssim
from realtime.live.capture import VideoSource, letterbox

#: (file in media/, width, height): the clips, upscaled (aspect kept, padded) as a webcam shows them.
CLIPS = (("carphone_176x144.mp4", 1280, 720), ("kpa_webcam_160x120.avi", 640, 480))
PORTRAITS = ("obama_portrait.jpg", "biden_portrait.jpg", "miranda_portrait.png", "astronaut.png")
#: The relit controls' known light, as a shading ratio: ambient + a lamp at the upper
#: left, in front (frame axes: x right, y down, z to the camera).
RELIGHT_DIRECTION = (-0.8, -0.35, 0.5)
RELIGHT_AMBIENT, RELIGHT_STRENGTH = 0.45, 0.75
FRONTAL_DEG = 15.0  # identity pairs: |yaw| and |pitch| below this
TILE = 200
TARGETS = {
    "self_psnr_db": ">= 28",
    "self_ssim": ">= 0.90",
    "identity_to_source": "<= 0.55 and <= to_target - 0.05",
    "edge_ratio": "<= 1.1",
    "flicker_ratio": "<= 1.2",
}


# -- running the swap -------------------------------------------------------------------
class Progress:
    """A one-line text progress bar on stderr."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled, self.t0 = max(total, 1), 0, enabled, time.perf_counter()

    def step(self, what: str, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            took = time.perf_counter() - self.t0
            print(
                f"\rswap quality [{bar}] {100 * frac:3.0f}% {took:5.0f} s  {what:<40.40}",
                end="",
                file=sys.stderr,
            )

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


@dataclass
class Row:
    """A contact sheet row: source | input | output face crops, with a caption."""

    source: np.ndarray
    input: np.ndarray
    output: np.ndarray
    landmarks: np.ndarray
    caption: str
    source_landmarks: np.ndarray | None = None


@dataclass
class Runner:
    """The pieces the benchmark drives: the shipped pipeline (detector, tracker,
    network, smoothing: faces as the live app sees them) and one renderer."""

    bundle: object
    processor: object  # a FaceProcessor (FaceProcessor.from_bundle)
    shape: float = 0.0
    renderer: object = None
    sheet: list[Row] = field(default_factory=list)

    def __post_init__(self):
        self.photos = self.processor.fresh(filter_factory=None, max_faces=1)

    def photo(self, image: np.ndarray, what: str = "photo") -> Reconstruction:
        """The largest face of a still, as the app reconstructs a swap source."""
        return self.photos.reconstruct_photo(image, what)

    def track(self, frames: list[np.ndarray]) -> list[Reconstruction | None]:
        """Each frame's first face through the live pipeline (tracking, smoothing)."""
        proc = self.processor.fresh(max_faces=1)
        out = []
        for i, img in enumerate(frames):
            recs = proc.process(Frame(img, i, i / 30.0)).reconstructions
            out.append(recs[0] if recs else None)
        return out

    def swap(self, photo: np.ndarray, rec: Reconstruction):
        from realtime.render.effects.swap import FaceSwap

        if self.shape:
            return FaceSwap(self.bundle.layout, photo, rec, shape=self.shape)
        return FaceSwap(self.bundle.layout, photo, rec)

    def render(self, image: np.ndarray, rec: Reconstruction | None, effect) -> np.ndarray:
        from realtime.render.renderer import Renderer

        if self.renderer is None:
            self.renderer = Renderer(self.bundle.layout, image.shape[1], image.shape[0])
        return self.renderer.render(image, [rec] if rec is not None else [], effect)


def read_clip(name: str, width: int, height: int, limit: int | None) -> list[np.ndarray]:
    """A clip's frames upscaled into width x height (aspect kept, grey padding)."""
    with VideoSource(SHARED_DATA / "media" / name) as video:  # CaptureError: one line
        return [letterbox(f, (width, height), fill=30) for f in video.read_all()[:limit]]


def grey_photo(photo: np.ndarray) -> np.ndarray:
    """The control source: the photo's shape, a flat mid-grey skin."""
    return np.full_like(photo, 128)


def clip_scores(run: Runner, name: str, frames: list[np.ndarray], progress: Progress) -> dict:
    """Self-swap fidelity, edge and flicker ratios on one clip, with the passthrough
    and flat-grey controls. The source is the clip's most frontal frame."""
    recs = run.track(frames)
    progress.step(f"{name}: tracked", len(frames))
    with_face = [i for i, r in enumerate(recs) if r is not None]
    if len(with_face) < 3:
        return {"frames": len(frames), "skipped": "fewer than 3 frames with a face"}
    src_i = min(with_face, key=lambda i: float(np.abs(recs[i].pose.angles[:2]).sum()))
    source = run.photo(frames[src_i], f"{name} frame {src_i}")
    effects = {"passthrough": "none", "self": run.swap(frames[src_i], source)}
    effects["grey"] = run.swap(grey_photo(frames[src_i]), source)
    scores: dict[str, list[float]] = {f"{k}_{m}": [] for k in effects for m in ("psnr", "ssim")}
    edge_in = edge_out = flick_in = flick_out = 0.0
    prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    times = []
    shown = {with_face[len(with_face) // 3], with_face[-1]} - {src_i}
    for i, (img, rec) in enumerate(zip(frames, recs, strict=True)):
        if rec is None:
            prev = None
            progress.step(f"{name}: frame {i}")
            continue
        hull = face_hull(img.shape, rec.landmarks)
        outs = {}
        for key, eff in effects.items():
            t0 = time.perf_counter()
            outs[key] = run.render(img, rec, eff)
            if key == "self":
                times.append(time.perf_counter() - t0)
            if i != src_i:
                scores[f"{key}_psnr"].append(psnr(outs[key], img, hull))
                scores[f"{key}_ssim"].append(ssim(outs[key], img, hull))
        band = boundary_band(img.shape, rec.landmarks)
        edge_in += float(gradient_energy(img)[band].sum())
        edge_out += float(gradient_energy(outs["self"])[band].sum())
        if prev is not None:
            region = hull | prev[2]
            flick_in += float(np.abs(img.astype(np.int16) - prev[0])[region].mean())
            flick_out += float(np.abs(outs["self"].astype(np.int16) - prev[1])[region].mean())
        prev = (img, outs["self"], hull)
        if i in shown:
            run.sheet.append(
                Row(
                    frames[src_i],
                    img,
                    outs["self"],
                    rec.landmarks,
                    f"self-swap {name} #{i}: {scores['self_psnr'][-1]:.1f} dB",
                    source.landmarks,
                )
            )
        progress.step(f"{name}: frame {i}")
    out = {k: float(np.mean(v)) for k, v in scores.items()}
    out.update(
        frames=len(frames),
        frames_with_face=len(with_face),
        source_frame=src_i,
        size=f"{frames[0].shape[1]}x{frames[0].shape[0]}",
        edge_ratio=edge_out / max(edge_in, 1e-9),
        flicker_ratio=flick_out / max(flick_in, 1e-9),
        render_ms=1000 * float(np.median(times)),
    )
    return out


def relit_scores(run: Runner, name: str) -> dict:
    """A portrait re-shaded by the known light on its own mesh, swapped with the unlit
    portrait as source: the output should match the relit input. Also the portrait
    swapped onto itself unlit (the texture round trip's ceiling)."""
    try:
        from realtime.render.effects.relight import Relight
        from realtime.render.lighting import directional_light
    except ImportError:  # a tree from before relighting (comparing against an old swap)
        return {"skipped": "this tree has no relight effect"}

    photo = cv2.imread(str(SHARED_DATA / "media" / name))
    if photo is None:
        return {"skipped": f"cannot read {name}"}
    source = run.photo(photo, name)
    light = directional_light(np.array(RELIGHT_DIRECTION), RELIGHT_AMBIENT, RELIGHT_STRENGTH)
    relit = run.render(photo, source, Relight(light=light))
    target = run.photo(relit, f"{name} relit")
    out = run.render(relit, target, run.swap(photo, source))
    same = run.render(photo, source, run.swap(photo, source))  # a new track: the light not carried over
    hull, hull0 = face_hull(relit.shape, target.landmarks), face_hull(photo.shape, source.landmarks)
    res = {
        "relit_psnr": psnr(out, relit, hull),
        "relit_ssim": ssim(out, relit, hull),
        "relit_input_psnr": psnr(photo, relit, hull),  # how far the light moved the face
        "same_psnr": psnr(same, photo, hull0),
        "same_ssim": ssim(same, photo, hull0),
    }
    caption = f"relit {name}: {res['relit_psnr']:.1f} dB (input vs unlit {res['relit_input_psnr']:.1f})"
    run.sheet.append(Row(photo, relit, out, target.landmarks, caption, source.landmarks))
    return res


def frontal_aflw(folder: Path, count: int) -> list[Path]:
    """The first ``count`` AFLW2000-3D images with |yaw| and |pitch| < FRONTAL_DEG."""
    from scipy.io import loadmat

    out = []
    for f in sorted(folder.glob("*.jpg")):
        pitch, yaw = np.degrees(loadmat(f.with_suffix(".mat"))["Pose_Para"][0, :2])
        if abs(yaw) < FRONTAL_DEG and abs(pitch) < FRONTAL_DEG:
            out.append(f)
            if len(out) >= count:
                break
    return out


def identity_scores(run: Runner, ident: Identity, pairs: int, progress: Progress) -> dict:
    """Different people swapped onto each other (consecutive frontal AFLW2000-3D dev
    images: source, target): embedding distances output -> source and -> target, with
    the target untouched and the flat-grey swap as controls."""
    files = frontal_aflw(SHARED_DATA / "aflw2000", 3 * pairs)
    rows: list[dict] = []
    skipped = 0
    i = 0
    while len(rows) < pairs and i + 1 < len(files):
        sf, tf = files[i], files[i + 1]
        i += 2
        src, tgt = cv2.imread(str(sf)), cv2.imread(str(tf))
        e_src, box = ident.embed(src), ident.box(tgt)
        e_tgt = ident.embed(tgt, box) if box else None
        if e_src is None or e_tgt is None or np.linalg.norm(e_src - e_tgt) < SAME_PERSON:
            skipped += 1
            continue
        try:
            s_rec, t_rec = run.photo(src, sf.name), run.photo(tgt, tf.name)
        except UserError:
            skipped += 1
            continue
        out = run.render(tgt, t_rec, run.swap(src, s_rec))
        grey = run.render(tgt, t_rec, run.swap(grey_photo(src), s_rec))
        e_out, e_grey = ident.embed(out, ident.box(out) or box), ident.embed(grey, ident.box(grey) or box)
        row = {
            "source": sf.name,
            "target": tf.name,
            "source_to_target": float(np.linalg.norm(e_src - e_tgt)),
            "to_source": float(np.linalg.norm(e_out - e_src)),
            "to_target": float(np.linalg.norm(e_out - e_tgt)),
            "grey_to_source": float(np.linalg.norm(e_grey - e_src)),
        }
        rows.append(row)
        if len(rows) <= 4:
            caption = f"{sf.stem} on {tf.stem}: to src {row['to_source']:.2f}, to tgt {row['to_target']:.2f}"
            run.sheet.append(Row(src, tgt, out, t_rec.landmarks, caption, s_rec.landmarks))
        progress.step(f"identity {len(rows)}/{pairs}")
    if not rows:
        return {"pairs": 0, "skipped_pairs": skipped}
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("source", "target")}
    return {"pairs": len(rows), "skipped_pairs": skipped, **mean, "per_pair": rows}


# -- contact sheet ----------------------------------------------------------------------
def _crop(image: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
    """A square around the face (1.6 x the landmark box), TILE px."""
    if landmarks is None:  # the middle square
        h, w = image.shape[:2]
        a = crop_affine(np.array([[0.0, w], [0.0, h]]), TILE, framing=min(h, w) / max(h, w))
    else:
        a = crop_affine(landmarks[:, :2].T, TILE, framing=1.6)
    return cv2.warpAffine(image, a, (TILE, TILE), flags=cv2.INTER_AREA, borderValue=(30, 30, 30))


def contact_sheet(rows: list[Row]) -> np.ndarray:
    """Rows of source | input | output, each captioned."""
    out = []
    for r in rows:
        tiles = [
            _crop(r.source, r.source_landmarks),
            _crop(r.input, r.landmarks),
            _crop(r.output, r.landmarks),
        ]
        strip = np.hstack(tiles)
        bar = np.full((22, strip.shape[1], 3), 20, np.uint8)
        cv2.putText(bar, r.caption, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
        out.append(np.vstack([bar, strip]))
    head = np.full((22, 3 * TILE, 3), 50, np.uint8)
    for k, label in enumerate(("source", "input", "output")):
        cv2.putText(
            head, label, (k * TILE + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA
        )
    return np.vstack([head, *out])


# -- the whole run ----------------------------------------------------------------------
def run_benchmark(
    run: Runner,
    clips=CLIPS,
    portraits=PORTRAITS,
    pairs: int = 20,
    frames: int | None = None,
    identity: bool = True,
    progress: bool = True,
) -> dict:
    """Every figure, as a dict (see the module docstring)."""
    clip_frames = {name: read_clip(name, w, h, frames) for name, w, h in clips}
    ident, why = None, ""
    if identity and pairs > 0:
        try:
            ident = Identity()
        except IdentityUnavailable as e:
            why = str(e)
            print(f"swap quality: identity skipped: {why}", file=sys.stderr)
    total = sum(2 * len(f) for f in clip_frames.values()) + len(portraits) + (pairs if ident else 0)
    bar = Progress(total, progress)
    result: dict = {"clips": {}, "relit": {}}
    for name, _, _ in clips:
        result["clips"][name] = clip_scores(run, name, clip_frames[name], bar)
    for name in portraits:
        result["relit"][name] = relit_scores(run, name)
        bar.step(f"relit {name}")
    result["identity"] = identity_scores(run, ident, pairs, bar) if ident else {"skipped": why or "not asked"}
    bar.close()
    result["summary"] = summarise(result)
    return result


def summarise(result: dict) -> dict:
    """The headline figures (means over clips, portraits and pairs) beside the targets."""
    clips = [c for c in result["clips"].values() if "self_psnr" in c]
    relit = [r for r in result["relit"].values() if "relit_psnr" in r]
    mean = lambda rows, k: float(np.mean([r[k] for r in rows])) if rows else None  # noqa: E731
    ident = result["identity"]
    return {
        "passthrough_psnr_db": mean(clips, "passthrough_psnr"),
        "self_psnr_db": mean(clips, "self_psnr"),
        "self_ssim": mean(clips, "self_ssim"),
        "grey_psnr_db": mean(clips, "grey_psnr"),
        "relit_psnr_db": mean(relit, "relit_psnr"),
        "relit_ssim": mean(relit, "relit_ssim"),
        "edge_ratio": mean(clips, "edge_ratio"),
        "flicker_ratio": mean(clips, "flicker_ratio"),
        "identity_to_source": ident.get("to_source"),
        "identity_to_target": ident.get("to_target"),
        "identity_target_to_source": ident.get("source_to_target"),
        "identity_grey_to_source": ident.get("grey_to_source"),
        "targets": TARGETS,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.eval swap",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--pairs", type=int, default=20, help="identity pairs of different people (0: none)")
    ap.add_argument("--frames", type=int, default=None, help="first N frames of each clip (default all)")
    ap.add_argument("--clips", nargs="*", default=None, help="clip files in media/ (default: all)")
    ap.add_argument("--portraits", nargs="*", default=None, help="portraits for the relit controls")
    ap.add_argument("--swap-shape", type=float, default=0.0, help="the swap's --swap-shape S")
    ap.add_argument("--weights", type=Path, default=None, help="bundle (default: shipped)")
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--out", type=Path, default=Path("out/eval"), help="folder for the JSON and PNG")
    args = ap.parse_args(argv)
    from realtime.core.weights import BundleError, load_bundle
    from realtime.live.faces import FaceProcessor

    try:
        bundle = load_bundle(args.weights)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    clips = CLIPS if args.clips is None else tuple(c for c in CLIPS if c[0] in args.clips)
    portraits = PORTRAITS if args.portraits is None else tuple(args.portraits)
    run = Runner(bundle, FaceProcessor.from_bundle(bundle, args.backend, "cpu"), shape=args.swap_shape)
    try:
        res = run_benchmark(run, clips, portraits, args.pairs, args.frames)
    except (FileNotFoundError, UserError) as e:  # CaptureError is a UserError
        print(f"error: {e}", file=sys.stderr)
        return 2
    res["weights"] = str(bundle.path)
    res["swap_shape"] = args.swap_shape
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "swap_quality.json").write_text(json.dumps(res, indent=2))
    cv2.imwrite(str(args.out / "swap_quality.png"), contact_sheet(run.sheet))
    for k, v in res["summary"].items():
        if k != "targets":
            target = TARGETS.get(k, "")
            print(f"{k:28s} {'n/a' if v is None else f'{v:.3f}':>8}  {target}")
    print(f"wrote {args.out}/swap_quality.json, swap_quality.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
