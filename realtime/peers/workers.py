"""Each peer in a process of its own, spoken to over the line protocol
(realtime.peers.mediapipe_peer), and where each peer's process comes from:
MediaPipe's own virtual environment, dlib's model files."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from realtime.core.paths import CACHE, REPO

MEDIAPIPE_VERSION = "0.10.14"
#: MediaPipe's own environment; PRNET_LIVE_MEDIAPIPE_PYTHON names another python instead.
MEDIAPIPE_VENV = CACHE / "peers" / "mediapipe-venv"
REPLY_TIMEOUT_S = 600.0


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


class PeerError(RuntimeError):
    """A peer's worker failed or broke the protocol; the message says where."""


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


def mediapipe_python() -> tuple[Path | None, str]:
    """The python that has mediapipe, or (None, why not and how to get it)."""
    override = os.environ.get("PRNET_LIVE_MEDIAPIPE_PYTHON")
    py = Path(override) if override else MEDIAPIPE_VENV / "bin" / "python"
    if not py.is_file():
        return None, "not installed: run `python -m realtime.peers --setup` (its own venv, ~1.1 GB)"
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
    # refine: the expression labels' and benchmark's; mesh: refined, every mesh point
    # (the swap's UV alignment)
    flags = {"mediapipe": [], "mediapipe-refine": ["--refine"], "mediapipe-mesh": ["--refine", "--mesh"]}
    if name in flags:
        py, why = mediapipe_python()
        if py is None:
            return None, None, why
        env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
        return [str(py), str(Path(__file__).with_name("mediapipe_peer.py")), "--serve", *flags[name]], env, ""
    if name == "dlib":
        path, why = dlib_model()
        if path is None:
            return None, None, why
    extra = {"ours-1thread": ["--threads", "1"], "ours-mobile": ["--model", "mobile"]}.get(name, [])
    return [sys.executable, "-m", "realtime.peers", "--worker", name.split("-")[0], *extra], None, ""


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
