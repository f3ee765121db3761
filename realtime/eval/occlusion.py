"""The visibility network's figures: ``python -m realtime.eval occlusion``.

1. **IoU on AFLW2000-3D dev faces with held-out occluders.** Each face's footprint
   comes from our face model fitted to its 68 ground-truth landmarks (a similarity
   from the mean shape, then the maximum a posteriori shape and expression); one or
   two occluders of held-out shapes, textured from other dev faces, go over it. IoU
   of (visibility > 0.5) against the footprint minus the occluders, at 128 px.
2. **AFLW's own hand marks.** An annotator left a point out of a frontal face when it
   was hidden. On held-out training crops with |yaw| < 30, the predicted visibility
   at each of AFLW's 21 points (placed by the crop's 3DMM fit, so present and absent
   points are placed alike) ranks present points above absent ones: ROC AUC per point
   and pooled.
3. **A hand over a real face in the live pipeline.** A held-out hand drawn over the
   mouth of frames of a real clip, through detection, PRNet, the visibility network
   and the renderer: the share of the hand's pixels the mask still paints, and how
   much of the mask's coverage of the rest of the face stays.
4. **Finger bars over real faces, the same way.** Held-out finger bars (2-5 rounded
   bars, flat or textured, in the face's own skin tone, over the face and across its
   border) on the same clip frames and on near-frontal AFLW2000-3D dev photos: the
   share of the bars' pixels painted and of the rest of the face's coverage kept.
5. **A picture grid** (``--grid``, docs/occlusion_grid.jpg): the near-frontal
   AFLW2000-3D dev faces whose inner face the network finds most covered, with the
   mask drawn without and with occlusion.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.core.paths import MEDIA
from realtime.core.uv import load_bfm
from realtime.eval.aflw2000 import crop_affine, load_aflw2000, warp_crop
from realtime.live.capture import clip_frames
from realtime.live.decode import fit_similarity
from realtime.live.occlusion import DEFAULT_WEIGHTS, EngineHead, TorchVisibility, VisibilityModel
from realtime.train.batches import to_input
from realtime.train.groundtruth import (
    CROP,
    DEFAULT_DATA,
    MapMaker,
    base_affine,
    landmark_basis,
    load_trainset,
    map_correction,
)
from realtime.train.occluders import AFLW21, Donor, aflw_points, draw_occluder, footprint, marked21, sample
from realtime.train.visibility import RESOLUTION, iou, split, upsample

CPU = torch.device("cpu")
EARS21 = (13, 17)  # AFLW's image-left and image-right ear: placed by the mesh (ear_points)


def fit_to_landmarks(pts: np.ndarray, bfm: dict, iters: int = 3) -> np.ndarray:
    """(62,) 3DMM parameters fitted to (3, 68) landmarks in 0-based 120-crop pixels
    (x right, y down, z larger nearer): a 3D similarity from the model's landmarks
    (Umeyama), then the maximum a posteriori shape and expression for the 2D points,
    alternated ``iters`` times."""
    mean = bfm["mean"].reshape(-1, 3)
    kpt = bfm["kpt_ind"]
    target = np.stack([pts[0] + 1, CROP - pts[1], pts[2]], 1)  # model axes: y up
    p = np.zeros(62)
    basis = landmark_basis(bfm)
    for _ in range(iters):
        rot, scale, t = fit_similarity(mean[kpt] + basis @ p[12:], target)
        p[:12] = np.hstack([scale * rot, t[:, None]]).ravel()
        p = map_correction(
            p[None], pts[:2].T[None], np.ones((1, 68), bool), [[k] for k in range(68)], bfm, 2.0
        )[0]
    return p


def dev_footprints(samples, bfm: dict, maker: MapMaker) -> tuple[list[np.ndarray], ...]:
    """Per dev face: the (120, 120) crop (RGB), its footprint (bool) and its (68, 2)
    ground-truth landmarks in the crop."""
    tris = np.ascontiguousarray(bfm["triangles"], np.int64)
    crops, foots, lms = [], [], []
    for s in samples:
        a = crop_affine(s.pts[:2], CROP)
        crop = cv2.cvtColor(warp_crop(s.image, a, CROP), cv2.COLOR_BGR2RGB)
        pts = np.vstack([a[:, :2] @ s.pts[:2] + a[:, 2:], s.pts[2:] * np.sqrt(abs(np.linalg.det(a[:, :2])))])
        params = fit_to_landmarks(pts, bfm)
        v = maker.vertices(params[None].astype(np.float32))[0].numpy()
        crops.append(crop)
        foots.append(footprint(v, tris))
        lms.append(pts[:2].T)
    return crops, foots, lms


def held_out_iou(model: VisibilityModel, crops, foots, lms, seed: int = 0) -> dict:
    """IoU on the dev faces with one or two held-out occluders each, and clean."""
    rng = np.random.default_rng(seed)
    donors = [Donor(c) for c in crops]
    aff = base_affine(RESOLUTION)
    out: dict[str, list[float]] = {"occluded": [], "clean": []}
    for key, n in (("occluded", None), ("clean", 0)):
        for s in range(0, len(crops), 32):
            imgs, vis = [], []
            for i in range(s, min(s + 32, len(crops))):
                k = n if n is not None else int(rng.integers(1, 3))
                img, v = sample(crops[i], foots[i], lms[i], aff, rng, donors, True, RESOLUTION, n=k)
                imgs.append(img)
                vis.append(v)
            out[key] += list(iou(upsample(model.run(to_input(np.stack(imgs), CPU))), np.stack(vis)))
    return {k: float(np.mean(v)) for k, v in out.items()}


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC: the chance a present point scores above an absent one (ties half)."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def ear_points(v: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """(2, 2) image-left and image-right ear lobe: the mesh's outermost points across
    the face between the nose's and the mouth's height (measured along the face's own
    up-down axis, so a tilted head is no different)."""
    eyes, mouth = lm[36:48].mean(0), lm[48:68].mean(0)
    down = mouth - eyes
    across = np.array([-down[1], down[0]])  # toward image left on an upright face
    rel = v[:, :2] - eyes
    t = rel @ down / max(float(down @ down), 1e-6)
    band = rel[(t > 0.6) & (t < 1.0)]
    if len(band) == 0:
        return lm[[0, 16]]
    side = band @ across
    return np.stack([band[np.argmax(side)], band[np.argmin(side)]]) + eyes


def hand_mark_auc(model: VisibilityModel, data_dir: Path, maker: MapMaker, limit: int | None) -> dict:
    """Per-point and pooled AUC on held-out frontal training crops."""
    data = load_trainset(data_dir)
    _, held = split(len(data.images))
    rows = held[np.abs(data.yaw[held]) < 30][:limit]
    aff = base_affine(RESOLUTION)
    marked = marked21(data_dir)
    scores: dict[int, tuple[list[float], list[float]]] = {j: ([], []) for j in range(1, 22)}
    for s in range(0, len(rows), 64):
        idx = rows[s : s + 64]
        imgs = [cv2.warpAffine(data.images[i], aff, (RESOLUTION,) * 2, flags=cv2.INTER_LINEAR) for i in idx]
        prob = upsample(model.run(to_input(np.stack(imgs), CPU)))
        verts = maker.vertices(data.params[idx]).numpy()
        for b, i in enumerate(idx):
            lm = data.pts68[i, :2].T
            where = dict(zip(AFLW21, aflw_points(lm), strict=True))
            where.update(zip(EARS21, ear_points(verts[b], lm), strict=True))
            for j, xy in where.items():
                x, y = xy @ aff[:, :2].T + aff[:, 2]
                inside = 0 <= x <= RESOLUTION - 1 and 0 <= y <= RESOLUTION - 1
                value = (
                    float(cv2.getRectSubPix(prob[b], (1, 1), (float(x), float(y)))[0, 0]) if inside else 0.0
                )
                present = marked[data.names[i]][j - 1]
                scores[j][0 if present else 1].append(value)
    per = {j: auc(np.array(p), np.array(a)) for j, (p, a) in scores.items()}
    pos = np.concatenate([np.array(scores[j][0]) for j in scores])
    neg = np.concatenate([np.array(scores[j][1]) for j in scores])
    inner = [j for j in scores if j not in EARS21]
    pos_in = np.concatenate([np.array(scores[j][0]) for j in inner])
    neg_in = np.concatenate([np.array(scores[j][1]) for j in inner])
    return {
        "crops": len(rows),
        "pooled_auc": auc(pos, neg),
        "pooled_auc_without_ears": auc(pos_in, neg_in),
        "absent_points": int(len(neg)),
        "present_points": int(len(pos)),
        "per_point_auc": {str(j): per[j] for j in per},
    }


def painted(out: np.ndarray, frame: np.ndarray, threshold: int = 24) -> np.ndarray:
    """(H, W) bool: pixels the effect changed."""
    return np.abs(out.astype(np.int16) - frame.astype(np.int16)).max(-1) > threshold


#: Where each trial puts its held-out occluder, and its size: a hand of a real hand's
#: size (a palm about 0.6 of the face's width) over the mouth; finger bars where the
#: generator puts them (over the face, on its border half the time, partly outside it).
TRIALS = {"hand": {"at_mouth": True, "size": 0.7}, "fingers": {"at_mouth": False, "size": 1.0}}


def occluder_trial(
    processor,
    renderer,
    frames: list[np.ndarray],
    effect: str,
    kind: str = "hand",
    seed: int = 0,
    donors: list[Donor] | None = None,
    still: bool = False,
) -> dict:
    """A held-out occluder of ``kind`` (``TRIALS``) over each frame, in the live
    pipeline's parts.

    ``processor`` is a FaceProcessor with a visibility model. Reference: the frame
    without the occluder, occlusion off. Returns the mean share of the occluder's
    pixels inside the reference mask that get painted (occlusion on and off), and the
    share of the reference mask outside the occluder that stays painted with occlusion
    on (and off: what PRNet's mesh, moved by the occluder, loses by itself). Keys are
    named by ``kind``. The occluder's skin comes from ``donors`` at random, or (None)
    from the frame's own face (its person's own skin tone). ``still``: the frames are
    unrelated photos (the tracker starts afresh on each)."""
    from realtime.core.types import Frame

    rng = np.random.default_rng(seed)
    model = processor.visibility
    trial = TRIALS[kind]
    cover_on, cover_off, kept, kept_off = [], [], [], []
    for k, img in enumerate(frames):
        processor.visibility = None
        if still:
            processor.tracker.reset()
        ref = processor.process(Frame(img, k, float(k)))
        if not ref.reconstructions:
            continue
        lm = ref.reconstructions[0].landmarks[:, :2]
        area = painted(renderer.render(img, ref.reconstructions, effect), img)
        if donors is None:
            donor = Donor(warp_crop(img, crop_affine(lm.T, CROP), CROP))
        else:
            donor = donors[int(rng.integers(len(donors)))] if len(donors) > 1 else donors[0]
        at = lm[48:68].mean(0) if trial["at_mouth"] else None
        covered, alpha = draw_occluder(
            img, lm, rng, donor, held_out=True, kind=kind, at=at, size=trial["size"]
        )
        occluder = alpha > 0.5
        res = {}
        for on in (False, True):
            processor.visibility = model if on else None
            r = processor.process(Frame(covered, k, float(k)))
            res[on] = painted(renderer.render(covered, r.reconstructions, effect), covered)
        under = occluder & area
        rest = area & ~occluder
        if under.sum() < 50 or rest.sum() < 50:
            continue
        cover_on.append((res[True] & under).sum() / under.sum())
        cover_off.append((res[False] & under).sum() / under.sum())
        kept.append((res[True] & rest).sum() / rest.sum())
        kept_off.append((res[False] & rest).sum() / rest.sum())
    processor.visibility = model

    def mean(v: list) -> float:
        return float(np.mean(v)) if v else float("nan")

    return {
        "frames": len(kept),
        f"{kind}_painted_with_occlusion": mean(cover_on),
        f"{kind}_painted_without": mean(cover_off),
        "rest_coverage_kept": mean(kept),
        "rest_coverage_kept_without": mean(kept_off),
    }


def hand_trial(processor, renderer, frames: list[np.ndarray], effect: str, seed: int = 0) -> dict:
    """``occluder_trial`` with a held-out hand over the mouth, its skin from the first
    frame."""
    return occluder_trial(processor, renderer, frames, effect, "hand", seed, [Donor(frames[0])])


def pooled(parts: dict[str, dict]) -> dict:
    """Trial results on several frame sets as one: their means weighted by frames."""
    n = sum(r["frames"] for r in parts.values())
    keys = list(dict.fromkeys(k for r in parts.values() for k in r if k != "frames"))
    out: dict = {"frames": n}
    for key in keys:
        total = sum(r[key] * r["frames"] for r in parts.values() if r["frames"])
        out[key] = float(total / n) if n else float("nan")
    return {**out, **parts}


def grid(
    model: VisibilityModel,
    samples,
    crops: list[np.ndarray],
    lms,
    path: Path,
    prnet: Path | None = None,
    n: int = 8,
) -> None:
    """The near-frontal dev faces (|yaw| < 45) with the most of their inner face (the
    hull of brows, eyes, nose and mouth) covered: input, mask without occlusion, mask
    with it (rendered for real on the GL renderer)."""
    from realtime.core.weights import load_bundle
    from realtime.live.decode import Decoder
    from realtime.live.engines import create_engine
    from realtime.live.occlusion import visibilities
    from realtime.render.renderer import Renderer

    bundle = load_bundle(prnet)
    engine = create_engine(bundle, "eager")
    r = bundle.config.resolution
    aff = base_affine(r)
    imgs = [cv2.warpAffine(c, aff, (r, r), flags=cv2.INTER_LINEAR) for c in crops]
    x = to_input(np.stack(imgs), CPU)
    prob = np.concatenate([upsample(model.run(x[s : s + 64])) for s in range(0, len(x), 64)])
    hidden = np.zeros(len(crops))
    for i, (p, lm) in enumerate(zip(prob, lms, strict=True)):
        inner = np.zeros((r, r), np.uint8)
        cv2.fillConvexPoly(
            inner, cv2.convexHull(np.round(lm[17:] @ aff[:, :2].T + aff[:, 2]).astype(np.int32)), 1
        )
        if abs(samples[i].yaw) < 45 and inner.any():
            hidden[i] = 1 - (p > 0.5)[inner > 0].mean()
    pick = np.argsort(-hidden)[:n]
    side = 256
    up = np.array([[side / r, 0, 0.5 * side / r - 0.5], [0, side / r, 0.5 * side / r - 0.5]])
    renderer = Renderer(bundle.layout, side, side)
    decoder = Decoder(bundle.layout)
    rows = []
    for i in pick:
        frame = cv2.resize(
            cv2.cvtColor(imgs[i], cv2.COLOR_RGB2BGR), (side, side), interpolation=cv2.INTER_CUBIC
        )
        maps = engine.run(x[i : i + 1])
        rec = decoder.decode(maps, up[None], [0])[0]
        vis = visibilities(model, x[i : i + 1], up[None])[0]
        plain = renderer.render(frame, [rec], "tiger")
        rec.visibility = vis
        kept = renderer.render(frame, [rec], "tiger")
        rows.append(np.concatenate([frame, plain, kept], 1))
    renderer.release()
    sheet = np.concatenate([np.concatenate(rows[k : k + 2], 1) for k in range(0, len(rows) - 1, 2)], 0)
    head = np.full((28, sheet.shape[1], 3), 255, np.uint8)
    for c in range(2):
        for j, text in enumerate(("input", "tiger mask", "with --occlusion")):
            cv2.putText(head, text, (c * 3 * side + j * side + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate([head, sheet], 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.eval occlusion",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    ap.add_argument(
        "--weights",
        type=Path,
        default=DEFAULT_WEIGHTS,
        help="visibility weights, or a PRNet bundle with a visibility head (its one pass measured)",
    )
    ap.add_argument(
        "--prnet", type=Path, default=None, help="PRNet bundle for the live parts (default: shipped)"
    )
    ap.add_argument("--limit", type=int, default=None, help="first N dev faces and held-out crops")
    ap.add_argument(
        "--clip",
        type=Path,
        default=MEDIA / "kpa_webcam_160x120.avi",
        help="real clip for the hand (at 640x480)",
    )
    ap.add_argument("--frames", type=int, default=30, help="frames of the clip")
    ap.add_argument(
        "--photos", type=int, default=60, help="AFLW2000-3D dev photos (|yaw| < 45) for the finger bars"
    )
    ap.add_argument("--out", type=Path, default=Path("out/eval"), help="folder for occlusion.json")
    ap.add_argument("--grid", type=Path, default=None, help="also write the picture grid here")
    args = ap.parse_args(argv)
    from realtime.core.types import UserError

    try:
        model = visibility_model(args.weights)
        if isinstance(model, EngineHead) and args.prnet is None:
            args.prnet = args.weights  # the hand trial runs the head's own network
        samples = load_aflw2000(args.data / "aflw2000", args.limit)
    except (UserError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bfm = load_bfm(args.data / "bfm" / "bfm_noneck_uv.npz")
    maker = MapMaker(bfm, RESOLUTION)
    print(f"fitting footprints of {len(samples)} dev faces", flush=True)
    crops, foots, lms = dev_footprints(samples, bfm, maker)
    report: dict = {"weights": str(args.weights)}
    report["iou"] = held_out_iou(model, crops, foots, lms)
    print(
        f"IoU, held-out occluders: {report['iou']['occluded']:.3f} (clean faces {report['iou']['clean']:.3f})"
    )
    report["hand_marks"] = hand_mark_auc(model, args.data, maker, args.limit)
    hm = report["hand_marks"]
    print(f"AFLW hand marks, {hm['crops']} frontal held-out crops: AUC {hm['pooled_auc']:.3f} pooled")
    report["hand_over_face"] = hand_over_face(model, args.clip, args.frames, args.prnet)
    h = report["hand_over_face"]
    print(
        f"hand over the mouth, {h['frames']} frames: "
        f"{100 * h['hand_painted_with_occlusion']:.1f} % of the hand painted "
        f"({100 * h['hand_painted_without']:.1f} % without occlusion), "
        f"{100 * h['rest_coverage_kept']:.1f} % of the face's coverage kept "
        f"({100 * h['rest_coverage_kept_without']:.1f} % without occlusion)"
    )
    report["fingers_over_face"] = fingers_over_face(
        model, args.clip, args.frames, samples, args.photos, args.prnet
    )
    f = report["fingers_over_face"]
    print(
        f"finger bars over the face, {f['clip']['frames']} clip frames + {f['photos']['frames']} photos: "
        f"{100 * f['fingers_painted_with_occlusion']:.1f} % of the bars painted "
        f"({100 * f['fingers_painted_without']:.1f} % without occlusion), "
        f"{100 * f['rest_coverage_kept']:.1f} % of the face's coverage kept "
        f"({100 * f['rest_coverage_kept_without']:.1f} % without occlusion)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "occlusion.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'occlusion.json'}")
    if args.grid is not None:
        grid(model, samples, crops, lms, args.grid, args.prnet)
        print(f"wrote {args.grid}")
    return 0


def visibility_model(path: Path) -> VisibilityModel:
    """The standalone network's weights, or a PRNet bundle's own visibility head (the
    eager engine's pass: the maps the live engines give, to 1e-6)."""
    from realtime.core.weights import BundleError, load_bundle
    from realtime.live.engines import create_engine

    try:
        bundle = load_bundle(path)
    except BundleError:
        return TorchVisibility(path)
    if not getattr(bundle.config, "visibility", False):
        raise BundleError(f"{path}: a PRNet bundle without a visibility head (train one: --on)")
    return EngineHead(create_engine(bundle, "eager"))


def live_parts(prnet: Path | None, model: VisibilityModel, size: tuple[int, int]):
    """A FaceProcessor (eager, CPU, no smoothing) with ``model`` and a renderer of
    ``size`` (w, h) for the PRNet bundle ``prnet`` (None: the shipped one)."""
    from realtime.core.weights import load_bundle
    from realtime.live.faces import FaceProcessor
    from realtime.render.renderer import Renderer

    bundle = load_bundle(prnet)
    processor = FaceProcessor.from_bundle(bundle, "eager", "cpu", filter_factory=None, visibility=model)
    return processor, Renderer(bundle.layout, *size)


def hand_over_face(
    model: VisibilityModel, clip: Path, n: int, prnet: Path | None = None, effect: str = "tiger"
) -> dict:
    """``hand_trial`` on ``n`` frames of a real clip with the PRNet bundle ``prnet``
    (None: the shipped one)."""
    frames = clip_frames(clip, (640, 480), step=5, limit=n)  # every 5th, as a webcam would show it
    processor, renderer = live_parts(prnet, model, frames[0].shape[1::-1])
    try:
        return hand_trial(processor, renderer, frames, effect)
    finally:
        renderer.release()
        processor.close()


def fingers_over_face(
    model: VisibilityModel,
    clip: Path,
    n: int,
    samples,
    photos: int,
    prnet: Path | None = None,
    effect: str = "tiger",
) -> dict:
    """Held-out finger bars in each face's own skin tone (flat or textured, over the
    face and its border): on the ``n`` clip frames of ``hand_over_face`` and on the
    first ``photos`` AFLW2000-3D dev photos ``samples`` turned less than 45 degrees.
    Pooled, then per set ("clip", "photos")."""
    frames = clip_frames(clip, (640, 480), step=5, limit=n)
    stills = [s.image for s in samples if abs(s.yaw) < 45][:photos]
    parts = {}
    for name, imgs, still in (("clip", frames, False), ("photos", stills, True)):
        if not imgs:
            parts[name] = {"frames": 0}
            continue
        processor, renderer = live_parts(prnet, model, imgs[0].shape[1::-1])
        try:
            parts[name] = occluder_trial(processor, renderer, imgs, effect, "fingers", still=still)
        finally:
            renderer.release()
            processor.close()
    return pooled(parts)
