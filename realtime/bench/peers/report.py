"""The peers' table (markdown, ratios to ours in brackets) and chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from realtime.peers.dlib_peer import DLIB_UPSAMPLE


def _ratio(v: float | None, ref: float | None) -> str:
    return f" ({v / ref:.2f}x)" if v is not None and ref else ""


def _get(d: dict, *keys: str) -> Any:
    """``d[keys[0]][keys[1]]...``, None where a key is missing."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _fig(v: float | None, ref: float | None, fmt: str, me: bool) -> str:
    """One figure, with its ratio to ours in brackets unless it is ours ("-": none)."""
    if v is None:
        return "-"
    return format(v, fmt) + ("" if me else _ratio(v, ref))


def markdown(report: dict) -> list[str]:
    """The peers table (ratios to ours in brackets) and its conditions, as markdown lines."""
    env, peers, nme = report["environment"], report["peers"], report.get("nme", {})
    sizes = list(dict.fromkeys(s for p in peers.values() for s in p.get("speed", {})))
    s0 = sizes[0] if sizes else "-"
    ours, n_common = peers.get("ours", {}), nme.get("common_images", 0)
    head = (
        ["peer"]
        + [f"{s} ms p50 / p95" for s in sizes]
        + [f"fps {s0}", f"CPU ms/frame {s0}", "start-up s warm; 1st", "still-face jitter px; with the shifts"]
        + ["AFLW faces found", f"NME % on the {n_common} common images, balanced / all"]
    )
    lines = [
        "### Peers: ours, MediaPipe Face Mesh and dlib on the same frames",
        "",
        f"{env['cpu']}, {env['cores']} cores; load average {env['load_avg_1m_start']:.1f} at start, "
        f"mean {env['load_avg_1m_mean']:.1f}, max {env['load_avg_1m_max']:.1f} (other processes "
        "shared the cores; the peers took turns in blocks of "
        f"{report['settings']['block']} frames, round-robin, so the ratios hold).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, p in peers.items():
        if "skipped" in p:
            lines.append(f"| {name} | skipped: {p['skipped']} |" + " |" * (len(head) - 2))
            continue
        me, n = name == "ours", nme.get(name, {})
        cells = []
        for s in sizes:
            p50, p95 = _get(p, "speed", s, "ms_p50"), _get(p, "speed", s, "ms_p95")
            ratio = "" if me or p50 is None else _ratio(p50, _get(ours, "speed", s, "ms_p50"))
            cells.append("-" if p50 is None else f"{p50:.1f} / {p95:.1f}{ratio}")
        cells.append(_fig(_get(p, "speed", s0, "fps"), None, ".0f", True))  # its ratio is ms's, inverted
        cells.append(
            _fig(_get(p, "speed", s0, "cpu_ms_mean"), _get(ours, "speed", s0, "cpu_ms_mean"), ".1f", me)
        )
        first = _get(p, "startup", "first_s")
        warm = _fig(_get(p, "startup", "warm_s"), _get(ours, "startup", "warm_s"), ".2f", me)
        cells.append(warm + (f"; {first:.2f}" if first else ""))
        j = p.get("jitter", {})
        jit = _fig(j.get("px"), _get(ours, "jitter", "px"), ".3f", me)
        cells.append(f"{jit}; {j['px_with_shifts']:.2f}" if "px" in j else j.get("skipped", "-"))
        cells.append(f"{n['found']}/{n['images']}" if n else "-")
        bal = _fig(_get(n, "common", "balanced"), _get(nme, "ours", "common", "balanced"), ".2f", me)
        al = _get(n, "common", "all")
        cells.append(bal + (f" / {al:.2f}" if al is not None else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "(r x): the peer's figure / ours; below 1 the peer is faster, steadier or more accurate.",
        "",
    ]
    if nme.get("common_per_bin"):
        per_bin = ", ".join(f"{k} {v}" for k, v in nme["common_per_bin"].items())
        lines.append(
            f"- Common AFLW2000-3D images per yaw bin: {per_bin} (a thin bin makes 'balanced' noisy)."
        )
    proto = nme.get("ours_protocol")
    if proto:
        t = proto["all_images"]
        com = proto.get("common", {}).get("balanced")
        lines.append(
            f"- Ours by the AFLW2000-3D protocol proper (crop from the ground truth's box, no detector), "
            f"{proto['images']} images: balanced {t['balanced']:.2f} %, all {t['all']:.2f} %"
            + (f"; on the {nme['common_images']} common images {com:.2f} %." if com else ".")
        )
    own = [
        f"{name} {t['balanced']:.2f} / {t['all']:.2f} ({nme[name]['found']})"
        for name in peers
        if (t := _get(nme, name, "found_images"))
    ]
    if own:
        lines.append(
            "- NME % balanced / all on the images each peer found (how many): " + ", ".join(own) + "."
        )
    if "ours-1thread" in peers:
        lines.append(
            "- ours-1thread: ours with torch.set_num_threads(1), so onnxruntime runs 1 thread too (its NME "
            "is ours': the same landmarks)."
        )
    if "ours-mobile" in peers:
        lines.append("- ours-mobile: ours with the mobile model (`--model mobile`, 96 px crops).")
    for name, p in peers.items():
        if "versions" in p:
            lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in p["versions"].items()))
        for s, v in p.get("speed", {}).items():
            if v["found"] < 1:
                lines.append(f"- {name} found a face in {100 * v['found']:.0f} % of the {s} frames.")
    lines += [
        "- Frames: carphone_176x144.mp4 letterboxed to each size, video mode (faces followed from frame "
        f"to frame), {report['settings']['frames']} timed frames after {report['settings']['warmup']} "
        "warm-up ones; ms is wall time per call, colour conversion included; CPU ms counts all of the "
        "peer's threads (ours: with the tracker's periodic MTCNN pass on its own thread). Ours: "
        "FaceProcessor with the onnxruntime engine (MTCNN, tracker, lite model, "
        "decode, One Euro); MediaPipe: solutions.face_mesh, 468 points, no irises; dlib: HOG detector "
        f"(upsample {DLIB_UPSAMPLE}) and the 68-point shape predictor every frame.",
        "- Start-up: process start to the first frame's result (imports, model load, first frame); warm: "
        "median of the starts after the run, 1st: the run's first start (disk caches may be cold).",
        "- Jitter: astronaut.png shifted by uniform +-0.5 px (tests/test_smooth.py's frames), RMS "
        "frame-to-frame motion of the 68 raw landmarks (before any smoothing) less the known shift; "
        "after the semicolon with the shifts left in, as tests/test_smooth.py measures.",
        "- NME: each peer's own detector on the whole image, the face nearest the ground truth taken; "
        "normalised by sqrt(w*h) of the ground truth's box for all; MediaPipe's 468 points mapped to 68 "
        "(mediapipe_peer.MP_TO_68).",
        "",
    ]
    return lines


def chart(report: dict, path: Path) -> None:
    """Bars per peer: ms per frame at each size (log scale, p95 whisker), warm start-up,
    jitter, NME on the common images; a peer without a figure gets no bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peers = {n: p for n, p in report["peers"].items() if "skipped" not in p}
    if not peers:
        return
    names, nme = list(peers), report.get("nme", {})
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 4, figsize=(4.2 * 4, 3.8))
    sizes = list(dict.fromkeys(s for p in peers.values() for s in p.get("speed", {})))
    width = 0.8 / max(1, len(sizes))
    for k, s in enumerate(sizes):
        p50 = np.array([_get(peers[n], "speed", s, "ms_p50") or np.nan for n in names])
        p95 = np.array([_get(peers[n], "speed", s, "ms_p95") or np.nan for n in names])
        xs = x + (k - (len(sizes) - 1) / 2) * width
        axes[0].bar(xs, p50, width, yerr=[np.zeros(len(names)), p95 - p50], capsize=3, label=s)
        for xi, v in zip(xs, p50, strict=True):
            if np.isfinite(v):
                axes[0].text(xi, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    axes[0].set(title="ms per frame (median, p95)", yscale="log")
    axes[0].legend(fontsize=8)
    panels = [
        ("start-up s (warm)", [_get(peers[n], "startup", "warm_s") for n in names]),
        ("still-face jitter px", [_get(peers[n], "jitter", "px") for n in names]),
        ("NME % balanced (common images)", [_get(nme, n, "common", "balanced") for n in names]),
    ]
    colours = [f"C{i}" for i in range(len(names))]
    for ax, (title, vals) in zip(axes[1:], panels, strict=True):
        v = np.array([np.nan if a is None else a for a in vals], float)
        ax.bar(x, v, color=colours)
        ax.set(title=title)
        for i, a in enumerate(v):
            if np.isfinite(a):
                ax.text(i, a, f"{a:.2f}", ha="center", va="bottom", fontsize=8)
    for ax in axes:
        ax.set_xticks(x, names, fontsize=8)
    env = report["environment"]
    fig.suptitle(
        f"{env['cpu']}, {env['cores']} cores, load avg mean {env['load_avg_1m_mean']:.1f}", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
