"""run_live.py as a user runs it: real files in, files out, one clear line for bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CARPHONE, MEDIA, ROOT, read_frames

pytestmark = pytest.mark.slow  # each test runs the app in a child process

# eager: the compiled CPU engine would spend its first-run compile time in every test
FAST = ("--backend", "eager")


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "run_live.py", *map(str, args), *FAST]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def start(*args: str) -> subprocess.Popen:
    """The command, running. Ctrl-C's default action is restored in the child: a
    pytest started in the background by a shell would hand on an ignored SIGINT."""
    cmd = [sys.executable, "run_live.py", *map(str, args), *FAST]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def assert_one_clear_line(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    for w in words:
        assert w in errors[0], errors[0]


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.stat().st_size > 0):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_help_explains_every_flag():
    """Every flag the command takes (all of them, read from its parser) is in --help
    with a sentence of its own."""
    from realtime.cli import build_parser

    out = cli("--help").stdout
    for flag in (
        "--camera",
        "--input",
        "--demo",
        "--output",
        "--no-window",
        "--effect",
        "--source-face",
        "--backend",
        "--mirror",
        "--occlusion",
        "--device",
        "--faces",
        "--frames",
        "--vcam",
        "--stream",
        "--profile",
        "--weights",
    ):
        assert flag in out
    actions = [a for a in build_parser()._actions if a.option_strings]
    assert len(actions) >= 30, "flags went missing from the parser"
    for action in actions:
        assert action.help and len(action.help.split()) >= 3, f"{action.option_strings} has no help"
        for flag in action.option_strings:
            assert flag in out, f"{flag} is not in --help"


def test_video_in_video_and_profile_out(tmp_path, carphone):
    out, profile = tmp_path / "o.mp4", tmp_path / "p.json"
    proc = cli("--input", carphone, "--output", out, "--no-window", "--profile", profile)
    assert proc.returncode == 0, proc.stderr
    assert read_frames(out) == 120
    summary = json.loads(profile.read_text())
    assert summary["frames"] == 120
    assert summary["meta"]["mirror"] is False  # off on a CPU unless asked for
    for stage in ("capture", "render", "output"):
        assert {"p50", "p95", "p99"} <= set(summary["stages"][stage])
    assert {"p50", "p95", "p99"} <= set(summary["latency_ms"])
    trace = json.loads((tmp_path / "p.trace.json").read_text())
    assert any(e["ph"] == "X" for e in trace["traceEvents"])
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_occlusion_is_a_stage_and_turns_off(tmp_path, carphone):
    """With an effect, the visibility network runs on every face (its own stage in the
    profile); --no-occlusion leaves it out."""
    for flag, on in (("--occlusion", True), ("--no-occlusion", False)):
        profile = tmp_path / f"{on}.json"
        proc = cli(
            "--input",
            carphone,
            "--frames",
            "8",
            "--effect",
            "paint",
            "--no-window",
            "--profile",
            profile,
            flag,
        )
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(profile.read_text())
        assert summary["meta"]["occlusion"] is on
        assert ("occlude" in summary["stages"]) is on
    # an overlay (landmarks) reads no visibility: the network is not run for it
    profile = tmp_path / "overlay.json"
    proc = cli(
        "--input", carphone, "--frames", "8", "--effect", "landmarks", "--no-window", "--profile", profile
    )
    assert proc.returncode == 0, proc.stderr
    assert "occlude" not in json.loads(profile.read_text())["stages"]


def test_demo_headless(tmp_path):
    out = tmp_path / "demo.mp4"
    proc = cli("--demo", "--no-window", "--frames", 20, "--output", out, "--size", "320x240", "--hud")
    assert proc.returncode == 0, proc.stderr
    cap = cv2.VideoCapture(str(out))
    assert read_frames(out) == 20 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 320


def test_demo_with_the_mobile_model(tmp_path):
    out = tmp_path / "demo.mp4"
    proc = cli(
        "--demo",
        "--no-window",
        "--frames",
        20,
        "--output",
        out,
        "--model",
        "mobile",
        "--profile",
        tmp_path / "p.json",
    )
    assert proc.returncode == 0, proc.stderr
    assert read_frames(out) == 20
    assert "infer" in json.loads((tmp_path / "p.json").read_text())["stages"]  # the face was reconstructed


def test_still_image_and_folder(tmp_path, media):
    proc = cli(
        "--input", media / "obama_portrait.jpg", "--no-window", "--mirror", "--output", tmp_path / "o.png"
    )
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(tmp_path / "o.png")).shape == cv2.imread(str(media / "obama_portrait.jpg")).shape
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("astronaut.png", "biden_portrait.jpg", "two_people.jpg"):
        shutil.copy(media / name, folder / name)
    proc = cli("--input", folder, "--no-window", "--output", tmp_path / "o.avi")
    assert proc.returncode == 0, proc.stderr
    assert read_frames(tmp_path / "o.avi") == 3


def test_missing_file():
    assert_one_clear_line(cli("--input", "no/such/clip.mp4", "--no-window"), "no such file")


def test_not_a_video_or_image(tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is text, not video\n" * 100)
    assert_one_clear_line(cli("--input", fake, "--no-window"), "not a readable video")
    fake_jpg = tmp_path / "photo.jpg"
    fake_jpg.write_bytes(b"\x89PNG not really")
    assert_one_clear_line(cli("--input", fake_jpg, "--no-window"), "not a readable image")


def test_camera_index_with_no_camera():
    assert_one_clear_line(cli("--camera", "63", "--no-window"), "no camera at 63")


def test_unwritable_output_path(tmp_path, carphone):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = cli("--input", carphone, "--no-window", "--output", blocker / "o.mp4")
    assert_one_clear_line(proc, "cannot write")
    assert_one_clear_line(
        cli("--input", carphone, "--no-window", "--output", tmp_path / "o.xyz"), "unsupported"
    )
    proc = cli("--input", carphone, "--no-window", "--profile", blocker / "p.json")
    assert_one_clear_line(proc, "cannot write")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--demo", "--camera", "0"], "conflict"),
        (["--input", str(CARPHONE), "--demo"], "conflict"),
        (["--input", str(CARPHONE), "--output", str(CARPHONE)], "overwritten"),
        (["--demo", "--frames", "0"], "--frames"),
        (["--demo", "--effect", "swap"], "--source-face"),
        (["--demo", "--swap-shape", "0.5"], "--source-face"),
        (["--demo", "--source-face", str(MEDIA / "obama_portrait.jpg"), "--swap-shape", "2"], "--swap-shape"),
        (
            ["--demo", "--effect", "tiger", "--source-face", str(MEDIA / "biden_portrait.jpg")],
            "--source-face",
        ),
        (["--demo", "--stream", "70000"], "port"),
        (["--demo", "--profile", "p.txt"], ".json"),
        (["--camera", "0", "--realtime"], "--realtime"),
        (["--demo", "--model", "mobile", "--weights", "x.pt"], "conflict"),
        (["--demo", "--model", "huge"], "--model huge"),
    ],
)
def test_conflicting_flags(args, words):
    assert_one_clear_line(cli(*args, "--no-window"), words)


def test_corrupt_video_is_processed_up_to_the_damage(tmp_path, carphone):
    data = bytearray(carphone.read_bytes())
    data[200_000:260_000] = bytes(60_000)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    readable = read_frames(damaged)
    proc = cli("--input", damaged, "--no-window", "--output", tmp_path / "o.mp4")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"stopped decoding at frame {readable} of 120" in proc.stderr
    assert read_frames(tmp_path / "o.mp4") == readable


def test_truncated_video(tmp_path, carphone, media):
    data = carphone.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])  # index lost: nothing decodable
    assert_one_clear_line(cli("--input", tmp_path / "cut.mp4", "--no-window"), "truncated/corrupt")
    avi = (media / "kpa_webcam_160x120.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(avi[: len(avi) // 2])  # AVI: plays up to the cut
    proc = cli("--input", tmp_path / "cut.avi", "--no-window", "--output", tmp_path / "o.mp4")
    assert proc.returncode == 1 and "truncated or corrupt" in proc.stderr and "Traceback" not in proc.stderr
    assert 10 < read_frames(tmp_path / "o.mp4") < 68


def test_ctrl_c_stops_and_leaves_a_playable_file(tmp_path):
    out = tmp_path / "live.mp4"
    proc = start("--demo", "--no-window", "--realtime", "--size", "320x240", "--output", out)
    try:
        wait_for(out, proc)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
    finally:
        proc.kill()  # a demo runs forever: never leave one behind
    stderr = proc.stderr.read()
    assert time.monotonic() - t0 < 3 and rc == 0 and "Traceback" not in stderr, stderr
    assert "interrupted" in stderr and read_frames(out) > 0


def test_camera_unplugged_mid_run(tmp_path, media):
    """A capture device opened by path that disappears: a message, retries, then a clear
    end with the output still playable."""
    device = tmp_path / "cam.avi"
    shutil.copy(media / "kpa_webcam_160x120.avi", device)
    out = tmp_path / "o.mp4"
    proc = start("--camera", device, "--no-window", "--output", out, "--reconnect", "1")
    try:
        wait_for(out, proc)
        device.unlink()
        rc = proc.wait(timeout=60)
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    assert rc == 1 and "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    last_lost = max(i for i, line in enumerate(lines) if "stopped sending frames" in line)
    assert any("lost and not back within 1 s" in line for line in lines[last_lost + 1 :])
    assert read_frames(out) > 0


def test_window_without_a_display(carphone):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    cmd = [sys.executable, "run_live.py", "--input", str(carphone), *FAST]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert_one_clear_line(proc, "--no-window")


def test_demo_in_a_real_window(xvfb):
    """The default, windowed mode: a glfw window under Xvfb shows 10 demo frames and
    the run ends cleanly."""
    proc = cli("--demo", "--frames", 10, "--size", "320x240")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "10 frames" in proc.stderr


def test_frame_without_a_face_passes_through_untouched(tmp_path):
    """A wall with no face, a mask asked for: the picture is unchanged except the HUD box
    in the corner (which leads with the faces' status, "no face")."""
    wall = np.full((240, 320, 3), (90, 140, 200), np.uint8)
    cv2.imwrite(str(tmp_path / "wall.png"), wall)
    out = tmp_path / "out.png"
    proc = cli("--input", tmp_path / "wall.png", "--effect", "tiger", "--hud", "--no-window", "--output", out)
    assert proc.returncode == 0, proc.stderr
    got = cv2.imread(str(out))
    changed = np.argwhere((got != wall).any(-1))
    assert len(changed) > 0, "the HUD was not drawn"
    y1, x1 = changed.max(0)
    assert (got[y1 + 1 :] == wall[y1 + 1 :]).all() and (got[:, x1 + 1 :] == wall[:, x1 + 1 :]).all()
    assert x1 < 300 and y1 < 120  # only the HUD box in the corner changed
