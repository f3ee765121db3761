"""Peers in the benchmark (``python -m realtime.bench --part peers``): our face
processing, MediaPipe Face Mesh and dlib's 68-point shape predictor on the same frames,
side by side in one run.

Each peer runs in a process of its own and speaks one line protocol
(``realtime.bench.peer_mediapipe``): ours (``FaceProcessor``, onnxruntime engine) and
dlib in this environment, MediaPipe in its own virtual environment, because mediapipe
0.10.14 (the last wheel that ships the face models) pins protobuf < 5 and pulls
opencv-contrib-python, which clash with ours. Every figure is timed inside the peer's
process while the others wait idle, so no peer pays for another's threads, and start-up
is measured the same way for all: from process start to the first frame's result.

The figures, per peer:

- ms per frame (median, p95) and fps on the carphone clip upscaled to 640x480 and
  1280x720 (the pipeline benchmark's frames), in video mode (faces followed from frame
  to frame, as live), colour conversion included. The peers take turns in blocks of
  frames, round-robin, rotating who goes first, so a background load that comes and
  goes hits all of them alike and the ratios hold on a busy machine.
- CPU ms per frame: the process's CPU time over the call, all its threads together.
- start-up: process start to first result, the first start in the run (disk caches may
  be cold; ours may export its ONNX model) and a second, warm one.
- raw still-face jitter: the astronaut photo shifted by random sub-pixel amounts (the
  frames of tests/test_smooth.py: 30 frames, uniform +-0.5 px, seed 0, first 3 skipped),
  RMS frame-to-frame motion of the 68 landmarks before any smoothing. "shift removed"
  subtracts the known shift first (the landmarks' own noise); "raw" keeps it, as the
  test does (the shifts alone make about 0.58 px).
- 68-point NME on AFLW2000-3D dev: each peer finds the face with its own detector on
  the whole 450x450 image (the face nearest the ground truth's box is taken), NME is the
  protocol's (realtime.train.evaluate: mean 2D error / sqrt(w*h) of the ground truth's
  box, per yaw bin and balanced). Ours also by the protocol proper (crop from the ground
  truth's box, no detector), the figure the model card quotes. A face a peer misses is
  counted as missed, not scored; the "common" figures are on the images every peer found.
  MediaPipe's 468 points become 68 through ``peer_mediapipe.MP_TO_68``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime.bench.peer_mediapipe import serve
from realtime.capture import CaptureError, VideoSource, letterbox
from realtime.paths import CACHE, MEDIA, REPO, SHARED_DATA

MEDIAPIPE_VERSION = "0.10.14"
#: MediaPipe's own environment; PRNET_LIVE_MEDIAPIPE_PYTHON names another python instead.
MEDIAPIPE_VENV = CACHE / "peers" / "mediapipe-venv"
#: "ours" runs as the app does (realtime.engines.settle_threads: torch on one thread beside
#: onnxruntime's); "ours-1thread" also gives onnxruntime a single thread.
PEERS = ("ours", "ours-1thread", "mediapipe", "dlib")
SIZES = ((640, 480), (1280, 720))
CLIP = MEDIA / "carphone_176x144.mp4"
WARMUP = 10  # frames each peer processes before timing (graph set-up, first allocations, caches)
JITTER_FRAMES = 30  # as tests/test_smooth.py
JITTER_SKIP = 3
DLIB_UPSAMPLE = 0  # the frames' faces are large: no upsampling (1 would cost ~4x)
REPLY_TIMEOUT_S = 600.0


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


class PeerError(RuntimeError):
    """A peer's worker failed or broke the protocol; the message says where."""


# ---------------------------------------------------------------- the peers themselves


class OursPeer:
    """Our FaceProcessor as the live pipeline runs it (MTCNN, tracker, lite model on
    onnxruntime, decode, One Euro), returning the raw landmarks (before smoothing)."""

    name = "ours"

    def __init__(self, backend: str = "onnxruntime", threads: int | None = None) -> None:
        import torch

        from realtime.decode import Decoder
        from realtime.detect import MTCNN
        from realtime.engines import create_engine, settle_threads
        from realtime.weights import load_bundle

        if threads:
            torch.set_num_threads(threads)  # before the engine: onnxruntime takes torch's count
        bundle = load_bundle()
        self.backend = backend
        self.engine = create_engine(bundle, backend=backend)
        if not threads:
            settle_threads(self.engine, "cpu")  # as the app runs it
        self.decoder = Decoder(bundle.layout)
        self.detector = MTCNN()
        assert bundle.path is not None  # load_bundle reads a file
        self.bundle_name = bundle.path.name
        self.video = True
        self.proc = None
        self.seq = 0

    def versions(self) -> dict[str, str]:
        import onnxruntime
        import torch

        return {
            "weights": self.bundle_name,
            "engine": self.engine.name,
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
            "torch_threads": str(torch.get_num_threads()),
        }

    def _processor(self, max_faces: int, smooth: bool):
        from realtime.faces import FaceProcessor
        from realtime.smooth import OneEuroFilter

        return FaceProcessor(
            self.engine,
            self.decoder,
            detector=self.detector,
            filter_factory=OneEuroFilter if smooth else None,
            max_faces=max_faces,
        )

    def open(self, video: bool) -> None:
        self.video, self.seq = video, 0
        self.proc = self._processor(1, smooth=True) if video else None

    def __call__(self, bgr: np.ndarray, rect: list[float] | None = None) -> list[np.ndarray]:
        """Raw (68, 2) landmarks per face; ``rect`` is ignored (the protocol's GT-box
        crop is run in the parent, by realtime.train.evaluate)."""
        from realtime.types import Frame

        proc = self.proc if self.video else self._processor(4, smooth=False)
        assert proc is not None, "open() first"
        res = proc.process(Frame(bgr, self.seq, self.seq / 30.0))
        self.seq += 1
        return [r.landmarks[:, :2].astype(np.float64) for r in res.raw]


def dlib_model() -> tuple[Path | None, str]:
    """The 68-point shape predictor shipped by face-recognition-models, found without
    importing that package (its __init__ imports pkg_resources, which setuptools >= 81
    no longer has)."""
    import importlib.util

    try:
        import dlib  # noqa: F401
    except ImportError:
        return None, "dlib not installed: pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None, "face-recognition-models not installed: pip install face-recognition-models==0.3.0"
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path, ""
    return None, "shape_predictor_68_face_landmarks.dat not found in face-recognition-models"


class DlibPeer:
    """dlib's HOG frontal face detector and its 68-point shape predictor (iBUG 300-W),
    each frame detected afresh (dlib has no tracker); in video mode the face the detector
    is surest of."""

    name = "dlib"

    def __init__(self) -> None:
        import dlib

        path, why = dlib_model()
        if path is None:
            raise PeerError(why)
        self.dlib = dlib
        # dlib's names come from its compiled module, which pyright cannot read
        self.detector = dlib.get_frontal_face_detector()  # pyright: ignore[reportAttributeAccessIssue]
        self.predictor = dlib.shape_predictor(str(path))  # pyright: ignore[reportAttributeAccessIssue]
        self.video = True

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"dlib": self.dlib.__version__, "face-recognition-models": version("face-recognition-models")}

    def open(self, video: bool) -> None:
        self.video = video

    def __call__(self, bgr: np.ndarray, rect: list[float] | None = None) -> list[np.ndarray]:
        """(68, 2) per face, dlib's integer pixel positions; ``rect`` [l, t, r, b]
        replaces the detector."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if rect is not None:
            rects = [self.dlib.rectangle(*(int(round(v)) for v in rect))]  # pyright: ignore[reportAttributeAccessIssue]
        else:
            found, scores, _ = self.detector.run(rgb, DLIB_UPSAMPLE, 0.0)
            rects = [r for _, r in sorted(zip(scores, found, strict=True), key=lambda x: -x[0])]
            if self.video:
                rects = rects[:1]  # the surest face (a weak false one turns up beside the astronaut)
        out = []
        for r in rects:
            shape = self.predictor(rgb, r)
            out.append(np.array([(p.x, p.y) for p in shape.parts()], np.float64))
        return out


# ------------------------------------------------------------------ the parent's side


def mediapipe_python() -> tuple[Path | None, str]:
    """The python that has mediapipe, or (None, why not and how to get it)."""
    override = os.environ.get("PRNET_LIVE_MEDIAPIPE_PYTHON")
    py = Path(override) if override else MEDIAPIPE_VENV / "bin" / "python"
    if not py.is_file():
        return None, "not installed: run `python -m realtime.bench.peers --setup` (its own venv, ~1.1 GB)"
    return py, ""


def setup_mediapipe(venv: Path = MEDIAPIPE_VENV) -> int:
    """Create MediaPipe's virtual environment and install the pinned wheel into it
    (own venv: its protobuf < 5 and opencv-contrib-python would break ours)."""
    py = venv / "bin" / "python"
    if not py.is_file():
        log(f"creating {venv} ...")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing mediapipe=={MEDIAPIPE_VERSION} into {venv} (about 1.1 GB with its dependencies)...")
    rc = subprocess.run([str(py), "-m", "pip", "install", "-q", f"mediapipe=={MEDIAPIPE_VERSION}"]).returncode
    if rc:
        log(f"pip failed ({rc}); remove {venv} and try again")
        return 1
    check = "import mediapipe as mp; mp.solutions.face_mesh.FaceMesh(static_image_mode=True).close()"
    rc = subprocess.run([str(py), "-c", check], capture_output=True).returncode
    log("mediapipe ready" if rc == 0 else f"mediapipe installed but its face mesh does not start ({rc})")
    return rc


class Worker:
    """One peer in its own process, spoken to over the line protocol."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict | None = None):
        self.name, self.log_path = name, log_path
        self.t_spawn = time.perf_counter()
        with open(log_path, "w") as err:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO, env=env
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are pipes
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.ready = self._read()
        self.ready_s = time.perf_counter() - self.t_spawn

    def _read(self) -> dict:
        ok, _, _ = select.select([self.stdout], [], [], REPLY_TIMEOUT_S)
        line = self.stdout.readline() if ok else ""
        if not line:
            self.proc.kill()
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise PeerError(
                f"{self.name} worker stopped (exit {self.proc.wait()}): {' | '.join(tail)[-400:]}"
            )
        return json.loads(line)

    def ask(self, **msg: object) -> dict:
        self.stdin.write(json.dumps(msg) + "\n")
        self.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise PeerError(f"{self.name}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.stdin.write('{"cmd": "quit"}\n')
                self.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def worker_command(name: str) -> tuple[list[str] | None, dict | None, str]:
    """(command, environment, why not) to start peer ``name``'s worker."""
    if name == "mediapipe":
        py, why = mediapipe_python()
        if py is None:
            return None, None, why
        env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
        return [str(py), str(Path(__file__).with_name("peer_mediapipe.py")), "--serve"], env, ""
    if name == "dlib":
        path, why = dlib_model()
        if path is None:
            return None, None, why
    threads = ["--threads", "1"] if name == "ours-1thread" else []
    return [sys.executable, "-m", "realtime.bench.peers", "--worker", name.split("-")[0], *threads], None, ""


def start(name: str, frames: Path, work: Path) -> tuple[Worker, float]:
    """Start ``name``'s worker and run the first frame of ``frames``: (worker, seconds
    from process start to that first result)."""
    cmd, env, why = worker_command(name)
    if cmd is None:
        raise PeerError(why)
    w = Worker(name, cmd, work / f"{name}.log", env)
    try:
        w.ask(cmd="open", frames=str(frames), video=True)
        w.ask(cmd="run", start=0, stop=1)
    except PeerError:
        w.close()
        raise
    return w, time.perf_counter() - w.t_spawn


def clip_frames(width: int, height: int, n: int) -> np.ndarray:
    """(n, H, W, 3): the carphone clip letterboxed to width x height (as the pipeline
    benchmark's clips), played forward and back when ``n`` is longer than the clip."""
    try:
        with VideoSource(CLIP) as video:
            src = video.read_all()
    except CaptureError as e:
        raise PeerError(str(e)) from None
    order = list(range(len(src))) + list(range(len(src) - 2, 0, -1))
    return np.stack([letterbox(src[order[k % len(order)]], (width, height), fill=30) for k in range(n)])


def still_frames(n: int = JITTER_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """(frames, shifts): the astronaut photo moved by uniform +-0.5 px, seed 0, bilinear,
    exactly as tests/test_smooth.py's still face."""
    img = cv2.imread(str(MEDIA / "astronaut.png"))
    if img is None:
        raise PeerError(f"cannot read {MEDIA / 'astronaut.png'}")
    rng = np.random.default_rng(0)
    shifts = np.array([rng.uniform(-0.5, 0.5, 2) for _ in range(n)])
    frames = [
        cv2.warpAffine(
            img, np.array([[1, 0, dx], [0, 1, dy]], np.float32), img.shape[1::-1], flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        for dx, dy in shifts
    ]  # fmt: skip
    return np.stack(frames), shifts


def jitter(faces: list[list], shifts: np.ndarray, skip: int = JITTER_SKIP) -> dict:
    """RMS frame-to-frame motion (px) of the 68 landmarks, with the known shift and
    without it; None where a frame had no face."""
    if any(not f for f in faces[skip:]):
        missed = sum(not f for f in faces[skip:])
        return {"skipped": f"no face in {missed} of {len(faces) - skip} frames"}
    lm = np.array([f[0] for f in faces[skip:]])  # (T, 68, 2)

    def motion(x: np.ndarray) -> float:
        return float(np.sqrt((np.diff(x, axis=0) ** 2).sum(-1).mean()))

    return {
        "px": motion(lm - shifts[skip:, None, :]),
        "px_with_shifts": motion(lm),
        "frames": len(lm),
    }


def pick_face(faces: list, gt: np.ndarray) -> np.ndarray | None:
    """The face whose landmarks' centre is nearest the ground truth's box centre, if
    within half the box's size (else the peer found some other face)."""
    lo, hi = gt[:2].min(1), gt[:2].max(1)
    centre, size = (lo + hi) / 2, float(np.sqrt(np.prod(hi - lo)))
    best, dist = None, 0.5 * size
    for f in faces:
        f = np.asarray(f)
        d = float(np.linalg.norm(f.mean(0) - centre))
        if d < dist:
            best, dist = f, d
    return best


def bin_counts(ev, yaw: np.ndarray) -> dict[str, int]:
    """Images per yaw bin: a bin of a few images makes the balanced figure noisy."""
    return {
        f"[{lo},{round(hi)}]": int(((np.abs(yaw) >= lo) & (np.abs(yaw) < hi)).sum()) for lo, hi in ev.BINS
    }


def nme_summary(ev, nme: np.ndarray, yaw: np.ndarray, found: np.ndarray, common: np.ndarray) -> dict:
    """NME tables (percent) over the images found and over the common ones."""
    out: dict = {"images": int(len(nme)), "found": int(found.sum())}
    if found.any():
        out["found_images"] = ev.nme_table(nme[found], yaw[found])
        out["found_per_bin"] = bin_counts(ev, yaw[found])
    if common.any():
        out["common"] = ev.nme_table(nme[common], yaw[common])
    return out


def bench_nme(workers: dict[str, Worker], n_images: int, aflw: Path) -> dict:
    """68-point NME of each peer on the first ``n_images`` AFLW2000-3D dev images, each
    with its own detector on the whole image; ours by the protocol proper too."""
    from realtime.train import evaluate as ev

    samples = ev.load_aflw2000(aflw, n_images)
    files = sorted(aflw.glob("*.jpg"))[: len(samples)]
    yaw = np.array([s.yaw for s in samples])
    nme, found = {}, {}
    for name, w in workers.items():
        log(f"NME: {name} on {len(samples)} AFLW2000-3D images...")
        w.ask(cmd="open", frames=None, video=False)
        errs, hits = np.full(len(samples), np.nan), np.zeros(len(samples), bool)
        for k, (s, f) in enumerate(zip(samples, files, strict=True)):
            face = pick_face(w.ask(cmd="image", path=str(f))["faces"], s.pts)
            if face is not None:
                pred = np.vstack([face.T, np.zeros((1, 68))])
                errs[k], hits[k] = ev.landmark_nme(pred, s.pts)[0], True
        nme[name], found[name] = errs, hits
    common = np.logical_and.reduce(list(found.values())) if found else np.zeros(0, bool)
    out: dict[str, Any] = {name: nme_summary(ev, nme[name], yaw, found[name], common) for name in workers}
    out["common_images"] = int(common.sum())
    out["common_per_bin"] = bin_counts(ev, yaw[common])
    out["yaw_bins"] = [f"[{lo},{round(hi)}]" for lo, hi in ev.BINS]
    if "ours" in workers:
        from realtime.decode import Decoder
        from realtime.engines import create_engine
        from realtime.weights import load_bundle

        bundle = load_bundle()
        res = ev.evaluate(
            samples, create_engine(bundle, "onnxruntime"), Decoder(bundle.layout), progress=False
        )
        per = np.asarray(res["per_image"])
        out["ours_protocol"] = {"images": len(per), "all_images": res["nme2d"]}
        if common.any():
            out["ours_protocol"]["common"] = ev.nme_table(per[common], yaw[common])
    return out


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {
        "ms_p50": float(np.median(a)),
        "ms_p95": float(np.percentile(a, 95)),
        "fps": 1000 / float(np.median(a)),
    }


def environment() -> dict:
    try:
        from realtime.engines import cpu_name

        cpu = cpu_name()
    except Exception:
        cpu = "unknown CPU"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], "cv2": cv2.__version__}


def run_peers(
    out_dir: Path,
    frames: int = 60,
    nme_images: int = 200,
    peers: tuple[str, ...] = PEERS,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    block: int = 5,
    warm_starts: int = 2,
    aflw: Path | None = None,
    log: Callable[[str], None] = log,
) -> dict:
    """Run every installed peer on the same frames (see the module docstring); write
    peers.json, peers.md and peers.png into ``out_dir`` and return the report (its
    ``markdown`` key: the table's lines). A peer that is not installed gets a row
    saying so."""
    aflw = aflw or SHARED_DATA / "aflw2000"
    report: dict = {
        "environment": environment(),
        "settings": {"frames": frames, "warmup": WARMUP, "block": block, "nme_images": nme_images},
        "peers": {p: {} for p in peers},
    }
    load = [os.getloadavg()[0]]
    report["environment"]["load_avg_1m_start"] = load[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    workers: dict[str, Worker] = {}
    with tempfile.TemporaryDirectory(prefix="prnet-peers-") as tmp:
        work = Path(tmp)
        clips = {}
        for w, h in sizes:
            clips[(w, h)] = work / f"clip_{w}x{h}.npy"
            np.save(clips[(w, h)], clip_frames(w, h, frames + WARMUP))
        still, shifts = still_frames()
        np.save(work / "still.npy", still)
        first = clips[sizes[0]]
        try:
            for name in peers:  # one at a time: start-up is timed alone
                log(f"starting {name}...")
                try:
                    w, startup = start(name, first, work)
                except PeerError as e:
                    report["peers"][name]["skipped"] = str(e)
                    log(f"  skipped: {e}")
                    continue
                workers[name] = w
                report["peers"][name].update(
                    versions=w.ready["versions"],
                    startup={"first_s": startup, "load_s": w.ready["load_s"], "ready_s": w.ready_s},
                )
                log(f"  first result {startup:.2f} s after process start")
            for w, h in sizes:
                log(f"timing {', '.join(workers)} at {w}x{h}: {frames} frames, round-robin by {block}")
                per: dict[str, dict] = {n: {"ms": [], "cpu_ms": [], "found": 0} for n in workers}
                for wk in workers.values():
                    wk.ask(cmd="open", frames=str(clips[(w, h)]), video=True)
                    wk.ask(cmd="run", start=0, stop=WARMUP)
                names = list(workers)
                for r, a in enumerate(range(WARMUP, WARMUP + frames, block)):
                    b = min(a + block, WARMUP + frames)
                    for name in names[r % len(names) :] + names[: r % len(names)]:
                        rep = workers[name].ask(cmd="run", start=a, stop=b)
                        per[name]["ms"] += rep["ms"]
                        per[name]["cpu_ms"] += rep["cpu_ms"]
                        per[name]["found"] += sum(bool(f) for f in rep["faces"])
                    load.append(os.getloadavg()[0])
                for name, v in per.items():
                    report["peers"][name].setdefault("speed", {})[f"{w}x{h}"] = {
                        **_stats(v["ms"]),
                        "cpu_ms_mean": float(np.mean(v["cpu_ms"])),
                        "frames": len(v["ms"]),
                        "found": v["found"] / max(1, len(v["ms"])),
                    }
            log("still-face jitter...")
            for name, wk in workers.items():
                wk.ask(cmd="open", frames=str(work / "still.npy"), video=True)
                faces = wk.ask(cmd="run", start=0, stop=len(still))["faces"]
                report["peers"][name]["jitter"] = jitter(faces, shifts)
            if nme_images > 0 and workers:
                same = {n: w for n, w in workers.items() if n != "ours-1thread"}  # ours' landmarks again
                report["nme"] = bench_nme(same, nme_images, aflw)
                load.append(os.getloadavg()[0])
        finally:
            for wk in workers.values():
                wk.close()
        for k in range(warm_starts):  # after the run, caches warm: what a user's next start costs
            for name in workers:
                log(f"warm start {k + 1}/{warm_starts} of {name}...")
                w2, startup = start(name, first, work)
                w2.close()
                report["peers"][name]["startup"].setdefault("warm_all_s", []).append(startup)
        for name in workers:
            st = report["peers"][name]["startup"]
            if st.get("warm_all_s"):
                st["warm_s"] = float(np.median(st["warm_all_s"]))
    env = report["environment"]
    env["load_avg_1m_end"] = os.getloadavg()[0]
    env["load_avg_1m_mean"] = float(np.mean(load))
    env["load_avg_1m_max"] = float(np.max(load))
    report["markdown"] = markdown(report)
    (out_dir / "peers.json").write_text(json.dumps(report, indent=1))
    (out_dir / "peers.md").write_text("\n".join(report["markdown"]) + "\n")
    chart(report, out_dir / "peers.png")
    return report


# ------------------------------------------------------------------------- the report


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
        "(peer_mediapipe.MP_TO_68).",
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m realtime.bench.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--setup", action="store_true", help=f"create MediaPipe's venv ({MEDIAPIPE_VENV})")
    ap.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for peers.json/md/png")
    ap.add_argument("--frames", type=int, default=60, help="timed frames per size")
    ap.add_argument("--nme-images", type=int, default=200, help="AFLW2000-3D dev images for NME (0: none)")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, of: " + ", ".join(PEERS))
    ap.add_argument("--worker", choices=("ours", "dlib"), help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return serve((lambda: OursPeer(threads=args.threads)) if args.worker == "ours" else DlibPeer)
    if args.setup:
        return setup_mediapipe()
    peers = tuple(p.strip() for p in args.peers.split(",") if p.strip())
    if not peers or any(p not in PEERS for p in peers):
        print(f"error: --peers takes {', '.join(PEERS)}", file=sys.stderr)
        return 2
    report = run_peers(args.out, frames=args.frames, nme_images=args.nme_images, peers=peers)
    print("\n".join(report["markdown"]))
    log(f"wrote {args.out / 'peers.json'}, peers.md, peers.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
