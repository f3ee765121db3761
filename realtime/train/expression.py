"""Expression labels: the lids and lips of each training crop where the image has them.

The 3DMM fits we train on have only 10 expression components: their lips open with
the image (their mouth opening follows MediaPipe Face Mesh's on the same crops), but
their lids barely move (sd ratio 0.29, correlation 0.17 against MediaPipe), so a network
trained on them cannot learn to blink. MediaPipe Face Mesh (Apache-2.0; its attention
model's refined lips and lids) is run once over every crop, in its own virtual
environment (``python -m realtime.peers --setup``), and its eye and lip points
(the 32 of the 68-point scheme, ``CONTROLS``) become control points: each fit's lid
and lip vertices are moved in the image plane to them, keeping the fit's depth, by a
fixed linear warp of the mesh (``realtime.core.lidlip.LidLipWarp``).

MediaPipe and the fits define a landmark a little differently (where the lid line
runs, how far in a lip corner sits); the mean of that difference, in the face's own
frame, is removed, so the labels keep the fits' definitions on average (and AFLW2000-3D,
whose ground truth is such a fit, sees no shift) and take MediaPipe's expression.

``python -m realtime.train.expression build`` runs MediaPipe over the crops (about
3 minutes on 2 cores) and writes the offsets to the cache; ``sheet OUT.jpg`` draws
a contact sheet of open and closed mouths and eyes, the fit's and the new lines, to
check by eye. Training reads them with ``--expression-labels``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np

from realtime.core.landmarks import EYE_L, EYE_R, LIPS, MOUTH_IN, Expression
from realtime.core.lidlip import CONTROLS
from realtime.core.paths import CACHE, SHARED_DATA
from realtime.core.uv import load_bfm
from realtime.train.groundtruth import CROP, TrainSet, landmarks_2d, load_trainset, refit_to_human

PAD, SIDE = 30, 360  # a crop is padded (edge pixels) and enlarged so MediaPipe's detector finds it
MAX_YAW = 50.0  # beyond this MediaPipe's far lid and lip corner are guesses: the fit stays
MAX_DISAGREE = 0.08  # MediaPipe's 68 points this far from the fit's (NME): a wrong face, skipped


def _face_frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2, 2) rotations into each face's frame (x along the eye line) and (M,)
    inter-ocular distances, from (M, 68, 2) landmarks."""
    d = lm[:, EYE_R].mean(1) - lm[:, EYE_L].mean(1)
    iod = np.linalg.norm(d, axis=-1)
    c, s = d[:, 0] / iod, d[:, 1] / iod
    rot = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], 1)  # image -> face frame
    return rot, iod


def control_offsets(fit: np.ndarray, mp: np.ndarray, yaw: np.ndarray | None) -> np.ndarray:
    """(M, 32, 2) image displacements (crop pixels) that move the fit's control points
    (``fit`` (M, 68, 2)) to MediaPipe's (``mp`` (M, 68, 2), NaN where it found no face),
    less the mean difference in each face's frame; zero where MediaPipe is not used."""
    rot, iod = _face_frame(fit)
    raw = mp[:, CONTROLS] - fit[:, CONTROLS]  # (M, 32, 2)
    box = np.sqrt(np.prod(fit.max(1) - fit.min(1), axis=-1))
    nme = np.linalg.norm(mp - fit, axis=-1).mean(1) / box
    use = np.isfinite(nme) & (nme < MAX_DISAGREE)
    if yaw is not None:
        use &= np.abs(yaw) < MAX_YAW
    local = np.einsum("mij,mkj->mki", rot, raw) / iod[:, None, None]
    bias = np.nanmean(np.where(use[:, None, None], local, np.nan), axis=0)  # (32, 2)
    fixed = (local - bias) * iod[:, None, None]
    out = np.einsum("mji,mkj->mki", rot, fixed)  # back to the image frame
    out[~use] = 0.0
    return out.astype(np.float32)


def run_mediapipe(images: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """(M, 68, 2) MediaPipe Face Mesh's (refined) 68-scheme points on (M, 120, 120, 3)
    RGB crops, in crop pixels; NaN where it found no face. Each crop is padded and
    enlarged (PAD, SIDE) so that its detector, made for faces with some room around
    them, finds the face."""
    import tempfile

    from realtime.peers.workers import PeerError, Worker, worker_command

    cmd, env, why = worker_command("mediapipe-refine")
    if cmd is None:
        raise SystemExit(f"error: MediaPipe {why}")
    out = np.full((len(images), 68, 2), np.nan, np.float32)
    k = (CROP + 2 * PAD) / SIDE
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker("mediapipe", cmd, Path(tmp) / "mediapipe.log", env)
        try:
            for a in range(0, len(images), chunk):
                big = [
                    cv2.resize(
                        cv2.copyMakeBorder(im[..., ::-1], PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE),
                        (SIDE, SIDE),
                        interpolation=cv2.INTER_CUBIC,
                    )
                    for im in images[a : a + chunk]
                ]
                np.save(Path(tmp) / "frames.npy", np.stack(big))
                worker.ask(cmd="open", frames=str(Path(tmp) / "frames.npy"), video=False)
                faces = worker.ask(cmd="run", start=0, stop=len(big))["faces"]
                for j, f in enumerate(faces):
                    if f:  # the face nearest the crop's centre
                        pts = [np.asarray(p) for p in f]
                        best = min(pts, key=lambda p: np.abs(p.mean(0) - SIDE / 2).sum())
                        out[a + j] = (best + 0.5) * k - 0.5 - PAD
                print(f"MediaPipe: {min(a + chunk, len(images))}/{len(images)} crops", flush=True)
        except PeerError as e:
            raise SystemExit(f"error: {e}") from None
        finally:
            worker.close()
    return out


def labels_path(names: np.ndarray) -> Path:
    key = hashlib.sha1("".join(names).encode()).hexdigest()[:10]
    return CACHE / "expression" / f"mediapipe68-{key}.npz"


def load_offsets(data: TrainSet, params: np.ndarray, bfm: dict) -> np.ndarray:
    """(M, 32, 2) control offsets for the crops of ``data`` labelled by ``params`` (the
    fits as trained on, e.g. refitted to the hand marks)."""
    path = labels_path(data.names)
    if not path.exists():
        raise SystemExit(f"error: no expression labels at {path}: python -m realtime.train.expression build")
    with np.load(path) as f:
        mp = f["mp68"]
    return control_offsets(landmarks_2d(params.astype(np.float64), bfm), mp, data.yaw)


def build(data_dir: Path) -> int:
    data = load_trainset(data_dir)
    path = labels_path(data.names)
    mp = run_mediapipe(data.images)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, mp68=mp, names=data.names)
    found = np.isfinite(mp[:, 0, 0])
    print(f"wrote {path}: MediaPipe found {found.mean():.1%} of {len(mp)} crops")
    return 0


def labelled_landmarks(data: TrainSet, bfm: dict, human_refit: bool) -> tuple[np.ndarray, np.ndarray]:
    """(fit landmarks, expression-labelled landmarks), both (M, 68, 2) crop pixels."""
    params = (
        refit_to_human(data.params, data.pts21, bfm)
        if human_refit and data.pts21 is not None
        else data.params
    )
    fit = landmarks_2d(params.astype(np.float64), bfm)
    new = fit.copy()
    new[:, CONTROLS] += load_offsets(data, params, bfm)
    return fit, new


def sheet(data_dir: Path, out: Path, per_row: int = 8) -> int:
    """Rows: the widest-open mouths, the most closed lids, closed mouths, wide-open
    lids (near-frontal crops MediaPipe labelled), each enlarged 3x: the fit's lines in
    red, the labels' in green."""
    data = load_trainset(data_dir)
    bfm = load_bfm(data_dir / "bfm" / "bfm_noneck_uv.npz")
    fit, new = labelled_landmarks(data, bfm, human_refit=True)
    e = Expression.from_landmarks(new)
    ok = np.abs(new - fit).max((1, 2)) > 0  # labelled by MediaPipe
    if data.yaw is not None:
        ok &= np.abs(data.yaw) < 20
    order = {
        "open mouths": np.argsort(-np.where(ok, e.mouth, -np.inf)),
        "closed eyes": np.argsort(np.where(ok, e.eyes, np.inf)),
        "closed mouths": np.argsort(np.where(ok, e.mouth, np.inf)),
        "open eyes": np.argsort(-np.where(ok, e.eyes, -np.inf)),
    }
    rng = np.random.default_rng(0)
    rows = []
    for title, idx in order.items():
        pick = rng.permutation(idx[: 4 * per_row])[:per_row]  # among the most extreme, not only the top
        tiles = []
        for i in pick:
            im = cv2.resize(data.images[i][..., ::-1], None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
            for lm, colour in ((fit[i], (0, 0, 255)), (new[i], (0, 255, 0))):
                p = (lm + 0.5) * 3 - 0.5
                for group in (EYE_L, EYE_R, LIPS, MOUTH_IN):
                    cv2.polylines(im, [np.round(p[group]).astype(np.int32)], True, colour, 1, cv2.LINE_AA)
            tiles.append(im)
        row = np.concatenate(tiles, 1)
        cv2.putText(row, title, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m realtime.train.expression", description=__doc__)
    ap.add_argument("cmd", choices=("build", "sheet"))
    ap.add_argument("out", nargs="?", type=Path, default=Path("docs/expression_labels.jpg"))
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    args = ap.parse_args(argv)
    return build(args.data) if args.cmd == "build" else sheet(args.data, args.out)


if __name__ == "__main__":
    sys.exit(main())
