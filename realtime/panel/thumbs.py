"""One small picture per effect, for the panel's effect buttons: a face photo (the
demo's, scikit-image's astronaut, which ships with a dependency: ``Controls.preview_face``)
reconstructed once by the run's own processor and drawn with each effect.

Drawing needs GL, and a GL context belongs to one thread: the main thread's is the
live run's, so this worker makes its own headless EGL context on its own thread and
draws there, off the frame path. Thumbnails are made at start for every effect and
again on request (a new source face changes the swap's).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import cv2
import numpy as np

SIZE = 160  # pixels, square; shown at about half that, sharp on high-density screens


class Thumbnails:
    """JPEG thumbnails by effect name, made on a worker thread.

    face: size -> a square photo of a face (``Controls.preview_face``).
    reconstruct: (photo, name) -> Reconstruction (the run's ``Controls.reconstruct``).
    effect: name -> the run's Effect object, drawn through its ``preview_copy()`` (the
    live run must not see the thumbnail's face in an effect's per-face state).
    """

    def __init__(
        self,
        layout,
        face: Callable[[int], np.ndarray],
        reconstruct: Callable,
        effect: Callable,
        names: list[str],
        notify=print,
    ):
        self.layout, self.face, self.reconstruct, self.effect = layout, face, reconstruct, effect
        self.notify = notify
        self.images: dict[str, bytes] = {}
        self.versions: dict[str, int] = {}  # bumped when a name's picture changes (the swap)
        self.failed = False
        self._queue: queue.Queue[str | None] = queue.Queue()
        for name in names:
            self._queue.put(name)
        self.thread = threading.Thread(target=self._run, name="panel-thumbnails", daemon=True)
        self.thread.start()

    def request(self, name: str) -> None:
        """(Re)draw ``name``'s thumbnail soon."""
        if not self.failed:
            self._queue.put(name)

    def close(self, timeout: float = 2.0) -> None:
        self._queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        from realtime.render.context import create_context
        from realtime.render.renderer import Renderer

        ctx = renderer = None
        try:
            face = self.face(SIZE)
            rec = self.reconstruct(face, "the thumbnail face")
            ctx = create_context()  # this thread's own: the live one belongs to the main thread
            renderer = Renderer(self.layout, SIZE, SIZE, ctx)
            while (name := self._queue.get()) is not None:
                try:
                    image = renderer.render(face, [rec], self.effect(name).preview_copy())
                    assert image is not None  # read=True: the pixels come back
                except Exception as e:  # one bad effect (a broken mask file) costs its picture only
                    self.notify(f"panel: no thumbnail for {name} ({e})")
                    continue
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
                if ok:
                    self.images[name] = buf.tobytes()
                    self.versions[name] = self.versions.get(name, 0) + 1
        except Exception as e:  # no EGL, no face: the page shows names without pictures
            self.failed = True
            self.notify(f"panel: effect thumbnails unavailable ({str(e).splitlines()[0] if str(e) else e})")
        finally:
            if renderer is not None:
                renderer.release()
            if ctx is not None:
                ctx.release()
