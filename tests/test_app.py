"""The live app as a library, in this process: ``App`` built from ``Options``, run on
real inputs with the real model and real GL (EGL; a window under Xvfb), steered by its
``Controls`` from another thread as the panel and library users steer it, and checked
through what a user sees: the file written, the state, the one-line refusals."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from conftest import MEDIA

from realtime.app import App, Options
from realtime.core.types import Frame, UsageError, UserError

pytestmark = [pytest.mark.slow, pytest.mark.gl]

# eager: the compiled CPU engine would spend its first-run compile time in every test
FAST = {"backend": "eager"}
CORNER = (slice(0, 40), slice(0, 160))  # where the HUD's figures are drawn


def video_frames(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def steer_when(app: App, frames: int, steps, timeout: float = 120.0) -> threading.Thread:
    """A thread that, once ``frames`` frames were output, calls each of ``steps`` (on
    ``app.controls``, from this other thread, as the panel does) and keeps what they
    raise in ``thread.raised``."""

    def run() -> None:
        deadline = time.monotonic() + timeout
        while app.profiler.frames < frames and time.monotonic() < deadline:
            time.sleep(0.01)
        for step in steps:
            try:
                step(app.controls)
            except Exception as e:
                thread.raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.raised = []  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_a_run_steered_from_another_thread(tmp_path):
    """A still held for 40 frames with the tiger mask; after 10, another thread turns
    on the HUD, switches to metal and asks for a swap on a face that is not there: the
    file shows the switch, the state says so, and the refusal names the face in view."""
    out = tmp_path / "out.mp4"
    options = Options(
        input=str(MEDIA / "astronaut.png"), window=False, effect="tiger", output=str(out), frames=40, **FAST
    )
    app = App(options, notify=lambda line: None)
    assert not app.processor.overlap, "a file run headless takes frames as fast as it can: no overlap"
    photo = cv2.imread(str(MEDIA / "obama_portrait.jpg"))
    steps = [
        lambda c: c.set_hud(True),
        lambda c: c.set_effect("metal"),
        lambda c: c.set_source_face(photo, track=999),
    ]
    thread = steer_when(app, 10, steps)
    result = app.run()
    thread.join(30)
    assert result.frames_out == 40 and result.reason == "frames"
    state = app.controls.state()
    assert state.effect == "metal" and state.hud and state.occlusion
    assert [f["source_face"] for f in state.faces] == [None], "one face in view, itself"
    track = state.faces[0]["track"]
    [refusal] = thread.raised
    assert isinstance(refusal, UsageError)
    assert "no face #999 in view" in str(refusal) and f"#{track}" in str(refusal)
    frames = video_frames(out)
    assert len(frames) == 40
    first, last = frames[0].astype(int), frames[-1].astype(int)
    assert np.abs(first[CORNER] - last[CORNER]).mean() > 10, "the HUD is not on the later frames"
    x0, y0, x1, y1 = (int(v) for v in state.faces[0]["box"])
    face = (slice(y0, y1), slice(x0, x1))
    assert np.abs(first[face] - last[face]).mean() > 10, "tiger and metal look the same"


def test_source_faces_at_start_go_through_the_controls(tmp_path):
    """--source-face at start: the swap is the run's effect, the face in view wears the
    photo's face, named as the panel names it."""
    out = tmp_path / "swap.png"
    options = Options(
        input=str(MEDIA / "astronaut.png"),
        window=False,
        source_face=str(MEDIA / "obama_portrait.jpg"),
        output=str(out),
        **FAST,
    )
    lines: list[str] = []
    app = App(options, notify=lines.append)
    result = app.run()
    assert result.frames_out == 1
    state = app.controls.state()
    assert state.effect == "swap" and "swap" in state.effects
    assert [f["source_face"] for f in state.faces] == ["obama_portrait.jpg"]
    assert any("fitting and unwrapping" in line for line in lines)
    swapped = cv2.imread(str(out))
    plain = cv2.imread(str(MEDIA / "astronaut.png"))
    x0, y0, x1, y1 = (int(v) for v in state.faces[0]["box"])
    diff = np.abs(swapped[y0:y1, x0:x1].astype(int) - plain[y0:y1, x0:x1]).mean()
    assert diff > 10, "the face was not swapped"


def test_window_keys_steer_the_controls(xvfb, tmp_path):
    """The demo in a real window (Xvfb) and into a file: the right arrow and H, pressed
    in the window, switch the effect and the HUD through the run's Controls; the
    file's frames after H carry the HUD as the window showed it."""
    import glfw

    out = tmp_path / "windowed.mp4"
    options = Options(demo=True, size="320x240", effect="tiger", output=str(out), frames=45, **FAST)
    app = App(options, notify=lambda line: None)
    assert app.window is not None and not app.controls.hud
    assert app.processor.overlap, "a watched run is live: the visibility network runs beside the engine"
    press = [lambda c: app.window.press(glfw.KEY_RIGHT), lambda c: app.window.press(glfw.KEY_H)]
    thread = steer_when(app, 10, press)
    result = app.run()
    thread.join(30)
    assert result.frames_out == 45 and result.reason == "frames"
    state = app.controls.state()
    assert state.effect == "metal", "the right arrow goes from tiger to the next effect"
    assert state.hud
    frames = video_frames(out)
    first, last = frames[0].astype(int), frames[-1].astype(int)
    assert np.abs(first[CORNER] - last[CORNER]).mean() > 10, "the HUD is not on the later frames"


@pytest.mark.parametrize(
    "options, says",
    [
        (Options(demo=True, camera="0"), "--camera and --demo conflict"),
        (Options(demo=True, frames=0), "--frames 0"),
        (Options(demo=True, size="big"), "WIDTHxHEIGHT"),
        (Options(demo=True, effect="swap"), "--source-face PHOTO"),
        (Options(demo=True, source_face="no/such.jpg"), "no/such.jpg: no such file"),
        (Options(demo=True, source_face=[str(MEDIA / "obama_portrait.jpg")] * 2), "given twice"),
        (Options(demo=True, swap_tone="source"), "--swap-tone"),
        (Options(demo=True, stream=8080, panel=8080), "different ports"),
        (Options(demo=True, profile="p.txt"), ".json"),
        (Options(demo=True, faces=0), "--faces 0"),
        (Options(demo=True, model="huge"), "--model huge"),
        (Options(demo=True, device="gpu7"), "not a torch device"),
    ],
)
def test_options_say_what_to_fix(options, says):
    """Options that cannot work are refused before anything is built, in one line."""
    with pytest.raises(UserError) as info:
        options.validate()
    message = str(info.value)
    assert says in message and "\n" not in message, message
    with pytest.raises(type(info.value)):
        App(options, notify=lambda line: None)  # the App checks them first


def test_the_processor_closes_its_detection_thread(bundle):
    """``with FaceProcessor.from_bundle(...) as faces:`` leaves no thread behind."""
    from realtime.live.faces import FaceProcessor

    image = cv2.imread(str(MEDIA / "astronaut.png"))
    with FaceProcessor.from_bundle(bundle, "eager", "cpu") as faces:
        for i in range(25):  # past the tracker's background re-detection
            assert faces.process(Frame(image, i, i / 30)).reconstructions
        assert any(t.name.startswith("detect") for t in threading.enumerate())
    assert not any(t.name.startswith("detect") for t in threading.enumerate())
