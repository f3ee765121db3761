"""Shared fixtures: the real data in ../shared (realtime.core.paths.SHARED_DATA, the one
place its path is set), the shipped weights bundle, and a virtual X display. In CI (CI
set) a missing prerequisite fails instead of skipping, so a broken runner cannot pass
by running nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
import torch

from realtime.core.paths import REPO, SHARED_DATA
from realtime.core.types import Reconstruction
from realtime.live.decode import Decoder

if TYPE_CHECKING:
    from realtime.train.groundtruth import TrainSet

ROOT: Path = REPO  # the checkout, for tests that run its commands
SHARED: Path = SHARED_DATA
MEDIA = SHARED / "media"
CARPHONE = MEDIA / "carphone_176x144.mp4"


def need(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when ``condition`` is false."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def read_frames(path: Path) -> int:
    """How many frames OpenCV decodes from ``path``: what a player would show."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def dev_face_crops(shared: Path, side: int, n: int = 48) -> dict[str, torch.Tensor]:
    """Per dev image: the face framed as in training, the same face shifted by 0.6-1 of
    its size in a random direction, and a background patch away from it (RGB in [0, 1])."""
    from realtime.eval.aflw2000 import load_aflw2000
    from realtime.train.face_head import background_affine, face_box, framing_affine, warp

    rng = np.random.default_rng(0)
    out: dict[str, list] = {"face": [], "shifted": [], "background": []}
    for s in load_aflw2000(shared / "aflw2000", limit=n):
        centre, size = face_box(s.pts[:2])
        rgb = s.image[:, :, ::-1]
        out["face"].append(warp(rgb, framing_affine(centre, size, side), side))
        a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.0) * size
        out["shifted"].append(
            warp(rgb, framing_affine(centre + d * np.array([np.cos(a), np.sin(a)]), size, side), side)
        )
        bg = background_affine(rng, rgb.shape[:2], centre, size, side)
        if bg is not None:
            out["background"].append(warp(rgb, bg, side))
    return {k: torch.from_numpy(np.stack(v)).permute(0, 3, 1, 2).float() / 255 for k, v in out.items()}


def train_crops(shared: Path, rows: int | list[int]) -> TrainSet:
    """AFLW training crops (RGB) with their 3DMM fits and 68 marks: the first ``rows``,
    or those at the indices ``rows``."""
    from realtime.train.groundtruth import TrainSet

    pick = slice(rows) if isinstance(rows, int) else rows
    with np.load(shared / "train" / "aflw_teacher_params.npz") as f:
        names, params, pts = f["names"][pick], f["params"][pick], f["pts68"][pick]
    with zipfile.ZipFile(shared / "train" / "aflw_crops_120.zip") as z:
        imgs = np.stack(
            [cv2.imdecode(np.frombuffer(z.read(f"images/{n}"), np.uint8), 1)[..., ::-1] for n in names]
        )
    return TrainSet(imgs, params, pts, names)


@pytest.fixture(scope="session")
def shared() -> Path:
    need(SHARED.is_dir(), f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def media(shared: Path) -> Path:
    return shared / "media"


@pytest.fixture(scope="session")
def carphone(media: Path) -> Path:
    return media / "carphone_176x144.mp4"


@pytest.fixture(scope="session")
def bfm(shared: Path) -> dict:
    from realtime.core.uv import load_bfm

    return load_bfm(shared / "bfm" / "bfm_noneck_uv.npz")


@pytest.fixture(scope="session")
def bundle():
    from realtime.core.weights import load_bundle

    return load_bundle()


@pytest.fixture
def xvfb(monkeypatch):
    """A private Xvfb display, set as DISPLAY for the test (and its subprocesses)."""
    need(
        shutil.which("Xvfb") is not None,
        "Xvfb is not installed (apt-get install xvfb): the window tests need a display",
    )
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        pass_fds=[write_fd],
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    # Xvfb writes "N\n" once it accepts clients; the pipe stays open while it runs,
    # because Xvfb treats a failed write to it as fatal.
    display = b""
    while not display.endswith(b"\n"):
        chunk = os.read(read_fd, 32)
        if not chunk:
            break
        display += chunk
    display = display.decode().strip()
    if not display:
        proc.kill()
        os.close(read_fd)
        need(False, "Xvfb did not start")
    monkeypatch.setenv("DISPLAY", f":{display}")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    yield display
    proc.terminate()
    proc.wait(timeout=10)
    os.close(read_fd)


@pytest.fixture(scope="module")
def ctx():
    """A headless OpenGL context (EGL; Mesa's llvmpipe without a GPU)."""
    from realtime.render.context import GLContextError, create_context

    try:
        return create_context()
    except GLContextError as e:
        need(False, str(e))


@pytest.fixture(scope="module")
def layout(bundle):
    return bundle.layout


UPSCALE = 4  # training crops are 120 px; shown at 480 px like a webcam face


@pytest.fixture(scope="module")
def decoder(layout):
    return Decoder(layout)


@pytest.fixture(scope="module")
def teacher(shared, bfm, layout, decoder):
    """i -> (480 x 480 photo, its Reconstruction from the teacher's 3DMM fit)."""
    from realtime.train.groundtruth import MapMaker

    maker = MapMaker(bfm, layout.resolution)
    assert (maker.layout.face_mask == layout.face_mask).all()
    with np.load(shared / "train" / "aflw_teacher_params.npz") as f:
        names, params = f["names"], f["params"]
    zf = zipfile.ZipFile(shared / "train" / "aflw_crops_120.zip")

    def get(i: int, track_id: int = 0) -> tuple[np.ndarray, Reconstruction]:
        buf = np.frombuffer(zf.read(f"images/{names[i]}"), np.uint8)
        img = cv2.resize(
            cv2.imdecode(buf, cv2.IMREAD_COLOR), None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC
        )
        s = float(UPSCALE)
        to_out = np.array([[[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5]]])
        maps = maker.maps(params[i][None], to_out).numpy()
        return img, decoder.decode(maps, np.array([[[1.0, 0, 0], [0, 1, 0]]]), [track_id])[0]

    yield get
    zf.close()
