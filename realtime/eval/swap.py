"""Swap-quality benchmark: ``python -m realtime.eval swap``.

The face swap is judged by what a user would check, each as one number:

* identity: a face-recognition network (dlib's ResNet, 128-d embeddings; under 0.6
  usually means "same person") compares the output face with the source photo and
  with the original target face, on pairs of different people: frontal AFLW2000-3D
  dev photos (``--pairs``, default 100), the shared portraits on frames of the
  shared clips, and the HD set: each portrait onto each other portrait at full size
  (realtime.eval.swap_pairs; printed as the HD table, with the portraits on the
  1280x720 clip). A swap that works is nearer the source than the target.
* mottle: the RMS of the chroma (Lab a, b) detail finer than 1/24 of the face's width,
  inside the face, output over input (realtime.eval.measures.mottle): a patchwork of
  skin colours, red and blue blotches, is above 1.
* self-swap fidelity: a clip swapped with one of its own frames as the source should
  barely change: PSNR and SSIM of the face region (the hull of the input's 68
  landmarks) against the input. Relit controls: a portrait re-shaded by a known light
  on its own mesh, swapped with the unlit portrait as source, should come out lit
  like the relit input, so the swap's light is the room's and not the photo's.
* edge ratio: gradient energy in a band across the blend boundary (the landmark
  hull's edge), output over input: above 1 is a visible seam; per pair also its worst
  side (of 8 sectors), where a turned face's far cheek shows a step.
* feature alignment: each portrait's eyes, brows, nose, nostrils and lips in UV
  against the layout's places, before and after the source's alignment, as MediaPipe
  reads them (realtime.eval.uv_align; skipped without its venv, or ``--no-align``).
* flicker ratio: mean frame-to-frame change of the face region, output over input.

Every figure is taken for each choice of an ablation (``swap_pairs.ablation``: the
default, then live lids, lips or brows; S in {0, 0.5, 1}; the other tone), printed as
a table. Controls: passthrough (effect none: the measuring itself, expected lossless)
and the swap with a flat grey source texture (what a self-swap must beat). Clips are
upscaled as a webcam would show them (carphone to 1280x720, the benchmark's HD clip).
It writes OUT/swap_quality.json and a contact sheet OUT/swap_quality.png (rows:
source | input | output; the best and the worst pairs; the worst HD pairs, the worst
on the 1280x720 clips and the AFLW pair with the worst mottle also at full
resolution, realtime.eval.swap_sheet). Identity needs the ``eval``
extra (dlib-bin, face-recognition-models); without it the rest still runs and the
JSON says why identity is missing.
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
from realtime.eval.identity import Identity, IdentityUnavailable
from realtime.eval.measures import ClipMeter, Reference, face_hull, psnr, ssim
from realtime.eval.swap_pairs import (
    Config,
    ablation,
    ablation_table,
    aflw_pairs,
    hd_pairs,
    hd_table,
    portrait_pairs,
    summary,
)
from realtime.eval.swap_sheet import Row, contact_sheet, sheet_pairs
from realtime.live.capture import clip_frames
from realtime.render.effects.swap import DEFAULT_SHAPE, DEFAULT_TONE

#: (file in media/, width, height): the clips, upscaled (aspect kept, padded) as a webcam shows them.
CLIPS = (("carphone_176x144.mp4", 1280, 720), ("kpa_webcam_160x120.avi", 640, 480))
#: Clips the portraits are swapped onto (the profile clip too: turned heads).
TARGET_CLIPS = (*CLIPS, ("hamilton_profile_640x360.mp4", 1280, 720))
PORTRAITS = ("obama_portrait.jpg", "biden_portrait.jpg", "miranda_portrait.png", "astronaut.png")
#: The relit controls' known light, as a shading ratio: ambient + a lamp at the upper
#: left, in front (frame axes: x right, y down, z to the camera).
RELIGHT_DIRECTION = (-0.8, -0.35, 0.5)
RELIGHT_AMBIENT, RELIGHT_STRENGTH = 0.45, 0.75
DEFAULT = Config("default", shape=DEFAULT_SHAPE, tone=DEFAULT_TONE)
TARGETS = {
    "self_psnr_db": ">= 28",
    "self_ssim": ">= 0.90",
    "identity_to_source": "<= 0.55 and <= to_target - 0.05",
    "identity_nearer_source": ">= 0.80",
    "mottle_cross": "<= 1.15",
    "aflw_mottle_max": "<= 1.15",
    "hd_to_source_max": "<= 0.55",
    "hd_margin_min": ">= 0.10",
    "hd_mottle_max": "<= 1.15",
    "hd_clip_mottle_max": "<= 1.15",
    "hd_clip_to_source_max": "<= 0.55",
    "hd_clip_margin_min": ">= 0.10",
    "mottle_self": "<= 1.15",
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
class Runner:
    """The pieces the benchmark drives: the shipped pipeline (detector, tracker,
    network, smoothing and, when the processor has one, the visibility network: faces
    as the live app sees them) and one renderer. ``fit``: sources are fitted as the app
    fits them (FaceProcessor.reconstruct_photo over PHOTO_CROPS); off, the plain one-crop
    reconstruction (the old swap's)."""

    bundle: object
    processor: object  # a FaceProcessor (FaceProcessor.from_bundle)
    fit: bool = True
    renderer: object = None
    sheet: list[Row] = field(default_factory=list)

    def __post_init__(self):
        self.photos = self.processor.fresh(filter_factory=None, max_faces=1)
        self.sources: dict[tuple, Reconstruction] = {}

    def target(self, image: np.ndarray, name: str = "photo") -> Reconstruction:
        """A still's largest face as a live frame's would be (with its visibility map)."""
        with self.processor.fresh(filter_factory=None, max_faces=1) as still:  # no track from the last
            recs = still.process(Frame(image, 0, 0.0)).reconstructions
        if not recs:
            raise UserError(f"{name}: no face")
        return recs[0]

    def photo(self, image: np.ndarray, name: str = "photo") -> Reconstruction:
        """The largest face of a still, as the app reconstructs a swap source (kept: a
        portrait is the source of several sets)."""
        from realtime.live.faces import PHOTO_CROPS

        key = (name, image.shape, int(image[::37, ::41].sum()))
        if key not in self.sources:
            crops = PHOTO_CROPS if self.fit else ()
            self.sources[key] = self.photos.reconstruct_photo(image, name, crops=crops)
        return self.sources[key]

    def track(self, frames: list[np.ndarray]) -> list[Reconstruction | None]:
        """Each frame's first face through the live pipeline (tracking, smoothing)."""
        out = []
        with self.processor.fresh(max_faces=1) as proc:  # its detection thread ends with the clip
            for i, img in enumerate(frames):
                recs = proc.process(Frame(img, i, i / 30.0)).reconstructions
                out.append(recs[0] if recs else None)
        return out

    def swap(self, photo: np.ndarray, rec: Reconstruction, config: Config = DEFAULT):
        from realtime.render.effects.swap import FaceSwap

        return FaceSwap(self.bundle.layout, photo, rec, **config.options())

    def render(self, image: np.ndarray, rec: Reconstruction | None, effect) -> np.ndarray:
        from realtime.render.renderer import Renderer

        if self.renderer is None:
            self.renderer = Renderer(self.bundle.layout, image.shape[1], image.shape[0])
        return self.renderer.render(image, [rec] if rec is not None else [], effect)


def grey_photo(photo: np.ndarray) -> np.ndarray:
    """The control source: the photo's shape, a flat mid-grey skin."""
    return np.full_like(photo, 128)


def clip_scores(
    run: Runner, name: str, frames: list[np.ndarray], recs, configs: list[Config], progress: Progress
) -> dict:
    """Self-swap fidelity, mottle, edge and flicker on one clip for each config, with
    the passthrough and flat-grey controls. The source is the clip's most frontal frame."""
    with_face = [i for i, r in enumerate(recs) if r is not None]
    if len(with_face) < 3:
        return {"frames": len(frames), "skipped": "fewer than 3 frames with a face"}
    src_i = min(with_face, key=lambda i: float(np.abs(recs[i].pose.angles[:2]).sum()))
    source = run.photo(frames[src_i], f"{name} frame {src_i}")
    first = run.swap(frames[src_i], source, configs[0])
    effects = {c.name: first if c == configs[0] else first.variant(**c.options()) for c in configs}
    effects["passthrough"] = "none"
    effects["grey"] = run.swap(grey_photo(frames[src_i]), source, configs[0])
    meters = {k: ClipMeter() for k in effects}
    times = []
    shown = {with_face[len(with_face) // 3], with_face[-1]} - {src_i}
    for i, (img, rec) in enumerate(zip(frames, recs, strict=True)):
        if rec is None:
            for m in meters.values():
                m.prev = None
            progress.step(f"{name}: frame {i}")
            continue
        ref = Reference.of(img, rec)
        for key, eff in effects.items():
            t0 = time.perf_counter()
            out = run.render(img, rec, eff)
            if key == configs[0].name:
                times.append(time.perf_counter() - t0)
                if i in shown:
                    caption = f"self-swap {name} #{i}: {psnr(out, img, ref.hull):.1f} dB"
                    run.sheet.append(Row(frames[src_i], img, out, rec.landmarks, caption, source.landmarks))
            meters[key].add(img, out, ref, i == src_i)
        progress.step(f"{name}: frame {i}")
    res = {k: m.result() for k, m in meters.items()}
    return {
        "configs": {c.name: res[c.name] for c in configs},
        "passthrough_psnr": res["passthrough"]["self_psnr"],
        "grey_psnr": res["grey"]["self_psnr"],
        "grey_ssim": res["grey"]["self_ssim"],
        "frames": len(frames),
        "frames_with_face": len(with_face),
        "source_frame": src_i,
        "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
        "render_ms": 1000 * float(np.median(times)),
        "warnings": first.warnings,
    }


def relit_scores(run: Runner, name: str) -> dict:
    """A portrait re-shaded by the known light on its own mesh, swapped with the unlit
    portrait as source: the output should match the relit input. Also the portrait
    swapped onto itself unlit (the texture round trip's ceiling)."""
    from realtime.render.effects.relight import Relight
    from realtime.render.lighting import directional_light

    photo = cv2.imread(str(SHARED_DATA / "media" / name))
    if photo is None:
        return {"skipped": f"cannot read {name}"}
    source = run.photo(photo, name)
    light = directional_light(np.array(RELIGHT_DIRECTION), RELIGHT_AMBIENT, RELIGHT_STRENGTH)
    relit = run.render(photo, source, Relight(light=light))
    target = run.target(relit, f"{name} relit")
    swap = run.swap(photo, source)
    out = run.render(relit, target, swap)
    same = run.render(photo, source, swap.variant())  # a new track: the light not carried over
    hull, hull0 = face_hull(relit.shape, target.landmarks), face_hull(photo.shape, source.landmarks)
    res = {
        "relit_psnr": psnr(out, relit, hull),
        "relit_ssim": ssim(out, relit, hull),
        "relit_input_psnr": psnr(photo, relit, hull),  # how far the light moved the face
        "same_psnr": psnr(same, photo, hull0),
        "same_ssim": ssim(same, photo, hull0),
        "warnings": swap.warnings,
    }
    caption = f"relit {name}: {res['relit_psnr']:.1f} dB (input vs unlit {res['relit_input_psnr']:.1f})"
    run.sheet.append(Row(photo, relit, out, target.landmarks, caption, source.landmarks))
    return res


# -- the whole run ----------------------------------------------------------------------
def run_benchmark(
    run: Runner,
    clips=CLIPS,
    portraits=PORTRAITS,
    pairs: int = 100,
    frames: int | None = None,
    identity: bool = True,
    progress: bool = True,
    default: Config = DEFAULT,
    ablate: bool = True,
    target_clips=TARGET_CLIPS,
    align: bool = True,
) -> dict:
    """Every figure, as a dict (see the module docstring)."""
    configs = ablation(default) if ablate else [default]
    names = {n for n, _, _ in clips} | ({n for n, _, _ in target_clips} if portraits else set())
    sizes = {n: (w, h) for n, w, h in (*target_clips, *clips)}
    clips_shown = {n: clip_frames(SHARED_DATA / "media" / n, sizes[n], limit=frames) for n in sorted(names)}
    ident, why = None, ""
    if identity and (pairs > 0 or portraits):
        try:
            ident = Identity()
        except IdentityUnavailable as e:
            why = str(e)
            print(f"swap quality: identity skipped: {why}", file=sys.stderr)
    n_self = sum(2 * len(clips_shown[n]) for n, _, _ in clips)
    n_cross = (pairs + len(portraits) * (len(target_clips) + 1)) if ident else 0
    bar = Progress(n_self + len(portraits) + n_cross, progress)
    tracked = {}
    for name, f in clips_shown.items():
        tracked[name] = run.track(f)
        bar.step(f"{name}: tracked", len(f) if name in {n for n, _, _ in clips} else 0)
    result: dict = {"configs": [c.__dict__ for c in configs], "clips": {}, "relit": {}}
    for name, _, _ in clips:
        result["clips"][name] = clip_scores(run, name, clips_shown[name], tracked[name], configs, bar)
    for name in portraits:
        result["relit"][name] = relit_scores(run, name)
        bar.step(f"relit {name}")
    if portraits and align:
        result["uv_align"] = align_scores(run, portraits)
    rows: list[dict] = []
    if ident:
        rows += aflw_pairs(run, ident, pairs, configs, bar)
        if portraits:
            on = {n: (clips_shown[n], tracked[n]) for n, _, _ in target_clips}
            rows += portrait_pairs(run, ident, on, portraits, configs, bar)
            rows += hd_pairs(run, ident, portraits, configs, bar)
        sheet_pairs(run.sheet, rows, configs[0].name)
    bar.close()
    result["identity"] = (
        [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        if ident
        else {"skipped": why or "not asked"}
    )
    result["ablation"] = {}
    for c in configs:
        selfs = [v["configs"][c.name] for v in result["clips"].values() if "configs" in v]
        result["ablation"][c.name] = {
            "aflw": summary([r for r in rows if r["set"] == "aflw"], c.name),
            "portraits": summary([r for r in rows if r["set"] == "portraits"], c.name),
            "hd": summary([r for r in rows if r["set"] == "hd"], c.name),
            "hd_clip": summary(
                [r for r in rows if r["set"] == "portraits" and r["size"] == "1280x720"], c.name
            ),
            "self": {
                k: _mean([r[k] for r in selfs])
                for k in ("self_psnr", "self_ssim", "mottle", "edge_ratio", "flicker_ratio")
            },
        }
    result["summary"] = summarise(result, configs[0].name)
    return result


def align_scores(run: Runner, portraits) -> dict:
    """Per portrait as a source: each feature's distance from the layout's place in UV,
    before and after the alignment (realtime.eval.uv_align; needs MediaPipe's venv)."""
    from realtime.eval.uv_align import MeshReader, measure
    from realtime.peers.workers import PeerError

    photos = {n: cv2.imread(str(SHARED_DATA / "media" / n)) for n in portraits}
    try:
        reader = MeshReader()
    except (UserError, PeerError) as e:
        return {"skipped": str(e)}
    try:
        return measure(
            run.bundle.layout, run.photo, reader, {n: p for n, p in photos.items() if p is not None}
        )
    finally:
        reader.close()


def _mean(values: list) -> float | None:
    """The mean of the figures a clip has (mottle is None on a grey clip), or None."""
    have = [v for v in values if v is not None]
    return float(np.mean(have)) if have else None


def summarise(result: dict, config: str) -> dict:
    """The headline figures (the default config; means over clips, portraits and pairs)
    beside the targets."""
    relit = [r for r in result["relit"].values() if "relit_psnr" in r]
    clips = [c for c in result["clips"].values() if "configs" in c]
    mean = lambda rows, k: float(np.mean([r[k] for r in rows])) if rows else None  # noqa: E731
    row = result["ablation"][config]
    a, p, s, hd = row["aflw"], row["portraits"], row["self"], row["hd"]
    return {
        "passthrough_psnr_db": mean(clips, "passthrough_psnr"),
        "self_psnr_db": s["self_psnr"],
        "self_ssim": s["self_ssim"],
        "grey_psnr_db": mean(clips, "grey_psnr"),
        "relit_psnr_db": mean(relit, "relit_psnr"),
        "relit_ssim": mean(relit, "relit_ssim"),
        "edge_ratio": s["edge_ratio"],
        "flicker_ratio": s["flicker_ratio"],
        "mottle_self": s["mottle"],
        "identity_pairs": a.get("pairs", 0),
        "identity_to_source": a.get("to_source"),
        "identity_to_target": a.get("to_target"),
        "identity_nearer_source": a.get("nearer_source"),
        "identity_target_to_source": a.get("source_to_target"),
        "mottle_cross": a.get("mottle"),
        "portraits_to_source": p.get("to_source"),
        "portraits_to_target": p.get("to_target"),
        "portraits_nearer_source": p.get("nearer_source"),
        "portraits_mottle": p.get("mottle"),
        "aflw_mottle_max": a.get("mottle_max"),
        "hd_pairs": hd.get("pairs", 0),
        "hd_to_source": hd.get("to_source"),
        "hd_to_source_max": hd.get("to_source_max"),
        "hd_margin_min": hd.get("margin_min"),
        "hd_mottle_max": hd.get("mottle_max"),
        "hd_seam": hd.get("seam"),
        "hd_seam_worst_side": hd.get("seam_worst_side"),
        "hd_clip_mottle_max": row["hd_clip"].get("mottle_max"),
        "hd_clip_to_source_max": row["hd_clip"].get("to_source_max"),
        "hd_clip_margin_min": row["hd_clip"].get("margin_min"),
        "targets": TARGETS,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.eval swap",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--pairs", type=int, default=100, help="AFLW2000-3D pairs of different people (0: none)")
    ap.add_argument("--frames", type=int, default=None, help="first N frames of each clip (default all)")
    ap.add_argument("--clips", nargs="*", default=None, help="clip files in media/ (default: all)")
    ap.add_argument(
        "--portraits", nargs="*", default=None, help="portraits: relit controls and sources on the clips"
    )
    ap.add_argument("--swap-shape", type=float, default=DEFAULT.shape, help="the default's --swap-shape S")
    ap.add_argument(
        "--swap-tone", choices=("live", "source"), default=DEFAULT.tone, help="the default's --swap-tone"
    )
    ap.add_argument("--no-ablation", action="store_true", help="only the default (no table)")
    ap.add_argument("--no-fit", action="store_true", help="plain one-crop source reconstruction")
    ap.add_argument("--no-align", action="store_true", help="skip the UV alignment measure (MediaPipe)")
    ap.add_argument("--no-occlusion", action="store_true", help="targets without the visibility network")
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
    targets = TARGET_CLIPS if args.clips is None else tuple(c for c in TARGET_CLIPS if c[0] in args.clips)
    portraits = PORTRAITS if args.portraits is None else tuple(args.portraits)
    default = Config("default", args.swap_shape, args.swap_tone)
    parts = {}
    if not args.no_occlusion:
        from realtime.live.occlusion import load_visibility

        parts["visibility"] = load_visibility("cpu")
    run = Runner(bundle, FaceProcessor.from_bundle(bundle, args.backend, "cpu", **parts), fit=not args.no_fit)
    try:
        res = run_benchmark(
            run,
            clips,
            portraits,
            args.pairs,
            args.frames,
            default=default,
            ablate=not args.no_ablation,
            target_clips=targets,
            align=not args.no_align,
        )
    except (FileNotFoundError, UserError) as e:  # CaptureError is a UserError
        print(f"error: {e}", file=sys.stderr)
        return 2
    res["weights"] = str(bundle.path)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "swap_quality.json").write_text(json.dumps(res, indent=2))
    cv2.imwrite(str(args.out / "swap_quality.png"), contact_sheet(run.sheet))
    for k, v in res["summary"].items():
        if k != "targets":
            target = TARGETS.get(k, "")
            print(f"{k:28s} {'n/a' if v is None else f'{v:.3f}':>8}  {target}")
    print()
    print(ablation_table(res["ablation"]))
    if isinstance(res["identity"], list):
        print()
        print(hd_table(res["identity"], "default"))
    if "uv_align" in res:
        from realtime.eval.uv_align import table

        print()
        print(table(res["uv_align"]) if "skipped" not in res["uv_align"] else res["uv_align"]["skipped"])
    print(f"wrote {args.out}/swap_quality.json, swap_quality.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
