"""Cross-person swaps for the swap benchmark (realtime.eval.swap): who the output is,
as a recogniser sees it, and how blotchy it is, for each choice of the ablation.

Three sets of pairs, each judged by dlib's face-recognition ResNet (realtime.eval
.identity): frontal AFLW2000-3D dev photos (source, target: consecutive images, a pair
the network itself calls one person is skipped), the shared portraits swapped onto
frames of the shared clips (the clip's own face, untouched, is the target), and the HD
set: each portrait onto each other portrait at full size. Each pair
is reconstructed and unwrapped once; every choice of the ablation (a ``Config``) is a
variant of that one swap, so the choices see the same faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.core.paths import SHARED_DATA
from realtime.core.types import UserError
from realtime.eval.identity import SAME_PERSON, Identity
from realtime.eval.measures import mottle_ratio, seam_ratios

FRONTAL_DEG = 15.0  # AFLW pairs: |yaw| and |pitch| below this
CLIP_FRAMES = 4  # frames of each clip a portrait is swapped onto


@dataclass(frozen=True)
class Config:
    """One choice of the ablation: the swap's ``shape``, ``tone`` and ``live`` parts."""

    name: str
    shape: float = 0.0
    tone: str = "live"
    live: tuple[str, ...] = ()

    def options(self) -> dict:
        return {"shape": self.shape, "tone": self.tone, "live": self.live}


def ablation(default: Config) -> list[Config]:
    """The default, then each choice changed alone: live lids, lips, brows; S in
    {0, 0.5, 1}; the other tone."""
    out = [default]
    for part in ("lids", "lips", "brows"):
        out.append(Config(f"live {part}", default.shape, default.tone, (*default.live, part)))
    for s in (0.0, 0.5, 1.0):
        if s != default.shape:
            out.append(Config(f"S={s:g}", s, default.tone, default.live))
    other = "source" if default.tone == "live" else "live"
    out.append(Config(f"tone {other}", default.shape, other, default.live))
    return out


def frontal_aflw(folder, count: int) -> list:
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


def landmark_box(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    """A dlib-like face box from 68 landmarks (for a face dlib's detector misses)."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    pad = 0.05 * (hi - lo)
    return int(lo[0] - pad[0]), int(lo[1] - pad[1]), int(hi[0] + pad[0]), int(hi[1] + pad[1])


def judge(ident: Identity, out: np.ndarray, box, e_src: np.ndarray, e_tgt: np.ndarray) -> tuple[float, float]:
    """Distances of the output's face (in ``box``, where the target face was) to the
    source's and the target's embeddings."""
    e = ident.embed(out, box)
    return float(np.linalg.norm(e - e_src)), float(np.linalg.norm(e - e_tgt))


def swap_configs(
    run, photo, s_rec, target, t_rec, configs, ident, box, e_src, e_tgt, base: dict
) -> list[dict]:
    """One row per config: the pair's distances and mottle under that choice."""
    first = run.swap(photo, s_rec, configs[0])
    rows = []
    for cfg in configs:
        swap = first if cfg == configs[0] else first.variant(**cfg.options())
        out = run.render(target, t_rec, swap)
        to_s, to_t = judge(ident, out, box, e_src, e_tgt)
        seam, seam_worst = seam_ratios(out, target, t_rec.landmarks)
        rows.append(
            {
                **base,
                "config": cfg.name,
                "to_source": to_s,
                "to_target": to_t,
                "mottle": mottle_ratio(out, target, t_rec.landmarks),
                "seam": seam,
                "seam_worst_side": seam_worst,
                "size": f"{target.shape[1]}x{target.shape[0]}",
                "_out": out if cfg == configs[0] else None,
            }
        )
    return rows


def aflw_pairs(run, ident: Identity, pairs: int, configs: list[Config], progress) -> list[dict]:
    """Different people of AFLW2000-3D dev swapped onto each other (rows per config)."""
    files = frontal_aflw(SHARED_DATA / "aflw2000", 4 * pairs)
    rows: list[dict] = []
    done = i = 0
    while done < pairs and i + 1 < len(files):
        sf, tf = files[i], files[i + 1]
        i += 2
        src, tgt = cv2.imread(str(sf)), cv2.imread(str(tf))
        e_src, box = ident.embed(src), ident.box(tgt)
        e_tgt = ident.embed(tgt, box) if box else None
        if e_src is None or e_tgt is None or np.linalg.norm(e_src - e_tgt) < SAME_PERSON:
            continue
        try:
            s_rec, t_rec = run.photo(src, sf.name), run.target(tgt, tf.name)
        except UserError:
            continue
        base = {
            "set": "aflw",
            "source": sf.name,
            "target": tf.name,
            "source_to_target": float(np.linalg.norm(e_src - e_tgt)),
        }
        for r in swap_configs(run, src, s_rec, tgt, t_rec, configs, ident, box, e_src, e_tgt, base):
            r["_pictures"] = (src, s_rec.landmarks, tgt, t_rec.landmarks)
            rows.append(r)
        done += 1
        progress.step(f"identity {done}/{pairs}")
    return rows


def portrait_pairs(
    run, ident: Identity, clips: dict, portraits, configs: list[Config], progress
) -> list[dict]:
    """Each portrait swapped onto CLIP_FRAMES frames of each clip (rows per config); the
    clip's face in that frame, untouched, is the target."""
    rows: list[dict] = []
    for name in portraits:
        photo = cv2.imread(str(SHARED_DATA / "media" / name))
        if photo is None:
            continue
        e_src = ident.embed(photo)
        try:
            s_rec = run.photo(photo, name)
        except UserError:
            continue
        for clip, (frames, recs) in clips.items():
            with_face = [i for i, r in enumerate(recs) if r is not None]
            for i in [with_face[k] for k in np.linspace(0, len(with_face) - 1, CLIP_FRAMES).astype(int)]:
                box = ident.box(frames[i]) or landmark_box(recs[i].landmarks)
                e_tgt = ident.embed(frames[i], box)
                if e_src is None or e_tgt is None:
                    continue
                base = {
                    "set": "portraits",
                    "source": name,
                    "target": f"{clip}#{i}",
                    "source_to_target": float(np.linalg.norm(e_src - e_tgt)),
                }
                for r in swap_configs(
                    run, photo, s_rec, frames[i], recs[i], configs, ident, box, e_src, e_tgt, base
                ):
                    r["_pictures"] = (photo, s_rec.landmarks, frames[i], recs[i].landmarks)
                    rows.append(r)
            progress.step(f"{name} on {clip}")
    return rows


def hd_pairs(run, ident: Identity, portraits, configs: list[Config], progress) -> list[dict]:
    """Each portrait swapped onto each other portrait, at full size (rows per config):
    the large faces a 1280 x 720 call shows, where blotches and steps show."""
    photos = {n: cv2.imread(str(SHARED_DATA / "media" / n)) for n in portraits}
    photos = {n: p for n, p in photos.items() if p is not None}
    rows: list[dict] = []
    for name, photo in photos.items():
        e_src = ident.embed(photo)
        try:
            s_rec = run.photo(photo, name)
        except UserError:
            continue
        for other, target in photos.items():
            if other == name:
                continue
            try:
                t_rec = run.target(target, other)
            except UserError:
                continue
            box = ident.box(target) or landmark_box(t_rec.landmarks)
            e_tgt = ident.embed(target, box)
            if e_src is None or e_tgt is None:
                continue
            base = {
                "set": "hd",
                "source": name,
                "target": other,
                "source_to_target": float(np.linalg.norm(e_src - e_tgt)),
            }
            for r in swap_configs(run, photo, s_rec, target, t_rec, configs, ident, box, e_src, e_tgt, base):
                r["_pictures"] = (photo, s_rec.landmarks, target, t_rec.landmarks)
                rows.append(r)
        progress.step(f"{name} on the portraits")
    return rows


def hd_table(rows: list[dict], config: str) -> str:
    """The HD pairs (and the portraits on the 1280 x 720 clip) under ``config``, a line
    each: identity, mottle and seam, against the targets."""
    mine = [r for r in rows if r["config"] == config and (r["set"] == "hd" or r.get("size") == "1280x720")]
    head = f"{'source':<22}{'target':<34}" + "".join(
        f"{k:>{w}}"
        for k, w in (("to src", 7), ("to tgt", 7), ("margin", 7), ("mottle", 7), ("seam", 6), ("worst", 6))
    )
    lines = [head]
    for r in mine:
        m = "   -" if r["mottle"] is None else f"{r['mottle']:7.2f}"
        lines.append(
            f"{Path(r['source']).name:<22}{str(r['target'])[:33]:<34}{r['to_source']:7.3f}{r['to_target']:7.3f}"
            f"{r['to_target'] - r['to_source']:7.3f}{m}{r['seam']:6.2f}{r['seam_worst_side']:6.2f}"
        )
    lines.append("targets: to src <= 0.55, margin (to tgt - to src) >= 0.10, mottle <= 1.15")
    return "\n".join(lines)


def summary(rows: list[dict], config: str) -> dict:
    """Means over one config's rows: distances, the share of outputs nearer the source
    than the target, and mottle."""
    mine = [r for r in rows if r["config"] == config]
    if not mine:
        return {"pairs": 0}
    mean = lambda k: float(np.mean([r[k] for r in mine]))  # noqa: E731
    coloured = [r["mottle"] for r in mine if r["mottle"] is not None]
    return {
        "pairs": len(mine),
        "to_source": mean("to_source"),
        "to_target": mean("to_target"),
        "source_to_target": mean("source_to_target"),
        "nearer_source": float(np.mean([r["to_source"] < r["to_target"] for r in mine])),
        "mottle": float(np.mean(coloured)) if coloured else None,
        "mottle_median": float(np.median(coloured)) if coloured else None,
        "mottle_max": float(np.max(coloured)) if coloured else None,
        "to_source_max": float(max(r["to_source"] for r in mine)),
        "margin_min": float(min(r["to_target"] - r["to_source"] for r in mine)),
        "seam": float(np.mean([r["seam"] for r in mine])),
        "seam_worst_side": float(max(r["seam_worst_side"] for r in mine)),
        "grey_targets": len(mine) - len(coloured),  # no mottle ratio: the target has no colour
    }


def ablation_table(result: dict) -> str:
    """The ablation as a text table: one line per choice."""
    head = (
        f"{'choice':<14}{'pairs':>6}{'to src':>8}{'to tgt':>8}{'nearer':>8}{'mottle':>8}"
        f"{'portr src':>10}{'portr tgt':>10}{'self dB':>9}{'SSIM':>7}{'flicker':>8}{'self mot':>9}"
    )
    lines = [head]
    for name, row in result.items():
        a, p, s = row.get("aflw", {}), row.get("portraits", {}), row.get("self", {})
        f = lambda d, k, w=8, n=3: f"{d[k]:>{w}.{n}f}" if d.get(k) is not None else f"{'-':>{w}}"  # noqa: E731
        lines.append(
            f"{name:<14}{a.get('pairs', 0):>6}{f(a, 'to_source')}{f(a, 'to_target')}"
            f"{f(a, 'nearer_source', 8, 2)}"
            f"{f(a, 'mottle')}{f(p, 'to_source', 10)}{f(p, 'to_target', 10)}{f(s, 'self_psnr', 9, 2)}"
            f"{f(s, 'self_ssim', 7)}{f(s, 'flicker_ratio')}{f(s, 'mottle', 9)}"
        )
    return "\n".join(lines)
