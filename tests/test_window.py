"""The live window, under a virtual X server (Xvfb): frames show, keys change the
effect and the HUD switch, and closing ends cleanly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.bench.components import synthetic_faces
from realtime.render.effects import EFFECTS
from realtime.render.renderer import Renderer

pytestmark = [pytest.mark.window, pytest.mark.gl]


def test_window_shows_frames_and_closes(xvfb, bundle, media):
    import glfw

    from realtime.outputs.window import EffectCycle, Window, WindowView

    layout = bundle.layout
    cap = cv2.VideoCapture(str(media / "carphone_176x144.mp4"))
    frames = []
    while len(frames) < 30:
        ok, f = cap.read()
        assert ok, "carphone clip ended early"
        frames.append(cv2.resize(f, (352, 288)))
    cap.release()
    h, w = frames[0].shape[:2]
    win = Window(w, h, title="test")
    keys = EffectCycle(EFFECTS, "tiger")
    renderer = Renderer(layout, w, h, win.ctx)
    view = WindowView(win, keys, drawn=lambda: renderer.output)
    assert keys.effect == "tiger"
    faces = synthetic_faces(layout, w, h, 1)
    shown = 0
    seen_effects = set()
    for i, frame in enumerate(frames):
        renderer.render(frame, faces, keys.effect, read=False)
        seen_effects.add(keys.effect)
        view.show(None, capture=(i == 5))  # None: the picture the renderer just drew
        assert not view.should_close()
        shown += 1
        if i == 5:  # what the window shows is the rendered frame
            expected = renderer.read()
            got = cv2.resize(win.shown, (w, h), interpolation=cv2.INTER_AREA)
            below_hud = slice(h // 3, h)
            assert np.abs(got[below_hud].astype(int) - expected[below_hud]).mean() < 6
        if i % 10 == 9:
            win.press(glfw.KEY_RIGHT)
    assert shown >= 30
    assert len(seen_effects) == 3
    win.press(glfw.KEY_H)
    view.poll()
    assert not keys.hud
    win.press(glfw.KEY_Q)
    assert view.should_close()
    renderer.release()
    view.close()
    assert win.handle is None
