"""Installed like any Python tool: the wheel carries its shaders, weights and panel
files, installs into a fresh virtual environment, and ``prnet-live --demo`` runs from
a folder that is not the checkout, writing every frame."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import pytest
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.gl]

FRAMES = 24


def _run(cmd: list, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of the checkout
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{cmd} exited {proc.returncode}:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel built from the checkout, installed into a new virtual environment (its
    dependencies, torch and the rest, seen from this environment: the wheel itself is
    what is tested). Returns the environment's bin folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ROOT, "-w", tmp],
        tmp,
    )
    (wheel,) = tmp.glob("prnet_live-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "realtime/weights/prnet_lite128.pt",
        "realtime/weights/mtcnn.pt",
        "realtime/weights/visibility128.pt",
        "realtime/render/shaders/mesh.vert",
        "realtime/render/data/swap_align.npz",
        "realtime/panel/static/index.html",
    ):
        assert shipped in names, f"the wheel lacks {shipped}"
    _run([sys.executable, "-m", "venv", "--system-site-packages", tmp / "venv"], tmp)
    bin_dir = tmp / "venv" / "bin"
    _run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], tmp)
    return bin_dir


def test_wheel_runs_the_demo_from_any_folder(installed, tmp_path):
    where = _run([installed / "python", "-c", "import realtime; print(realtime.__file__)"], tmp_path)
    assert str(installed.parent) in where.stdout, f"realtime came from {where.stdout.strip()}, not the wheel"
    out = tmp_path / "demo.mp4"
    cmd = [installed / "prnet-live", "--demo", "--no-window", "--effect", "tiger", "--frames", FRAMES]
    _run([*cmd, "--output", out, "--backend", "onnxruntime"], tmp_path)
    cap = cv2.VideoCapture(str(out))
    written = 0
    while cap.read()[0]:
        written += 1
    cap.release()
    assert written == FRAMES


def test_version_names_the_weights_and_the_engine(installed, tmp_path):
    text = _run([installed / "prnet-live", "--version"], tmp_path).stdout
    assert text.startswith("prnet-live 0.") and "prnet_lite128.pt" in text and "sha256" in text
    assert "engine (--backend auto on cpu)" in text
