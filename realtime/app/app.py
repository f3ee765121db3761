"""The live app as a library: one frame's way from capture to output, assembled.

    source (realtime.live.capture) --> Pipeline (realtime.live.pipeline): three threads
        capture thread:    Grabber reads the source              -> Frame
        inference thread:  FaceProcessor (realtime.live.faces)   -> FaceResult
                           detect/track -> crop -> engine -> decode -> smooth
        main (GL) thread:  RenderStage (realtime.render.stage)   -> image
                           -> outputs (realtime.outputs) and the window view

``App(Options(...))`` checks the options (``Options.validate``, realtime.app.options),
builds every part from what they say, each given the parts it uses as it is built,
``run()`` runs them and closes each exactly once (also on errors and Ctrl-C);
``main()`` adds the user's messages and the exit status. ``app.controls``
(realtime.app.controls) steers the run from any thread while it runs: the effect,
the swap's source face, mirror averaging, smoothing, occlusion, the HUD and the
outputs.

    from realtime.app import App, Options
    result = App(Options(demo=True, window=False, output="out.mp4", frames=150)).run()
"""

from __future__ import annotations

import os
import platform
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np

from realtime.app.controls import Controls
from realtime.app.options import Options, parse_size
from realtime.core.types import RunResult, UsageError
from realtime.live.capture import CameraSource, DemoSource, Source, open_input
from realtime.live.pipeline import Output, Outputs, Pipeline
from realtime.live.profiler import Profiler
from realtime.outputs import VirtualCamOutput, check_writable, open_file_output
from realtime.outputs.hud import Hud

__all__ = ["EXIT_INPUT_ENDED_EARLY", "EXIT_OK", "App", "Options", "read_photo"]

EXIT_OK, EXIT_INPUT_ENDED_EARLY = 0, 1


def build_source(options: Options, notify: Callable[[str], None]) -> Source:
    if options.camera is not None:
        device = int(options.camera) if options.camera.isdigit() else options.camera
        w, h = parse_size(options.size, (1280, 720))
        source = CameraSource(device, w, h)
        g = source.granted
        notify(
            f"camera {device}: {g['width']}x{g['height']} @ {g['fps']:.0f} fps {g['fourcc']} "
            f"(asked {w}x{h} MJPG)"
        )
        return source
    if options.input:
        watched = options.window or options.panel is not None  # a still is held while watched
        still_frames = options.frames or (None if watched else 1)  # headless: once
        return open_input(options.input, image_frames=still_frames)
    w, h = parse_size(options.size, (640, 480))
    return DemoSource(w, h)


def build_outputs(options: Options, source: Source, notify: Callable[[str], None]) -> list[Output]:
    outputs: list[Output] = []
    try:
        if options.output:
            outputs.append(open_file_output(options.output, fps=source.fps))
        if options.vcam:
            w, h = source.size
            cam = VirtualCamOutput(w, h, source.fps)
            notify(f"virtual camera: {cam.device}")
            outputs.append(cam)
        if options.stream is not None:
            from realtime.outputs.http import StreamOutput

            stream = StreamOutput(options.stream)
            notify(f"MJPEG stream: {stream.url} (page: http://{stream.host}:{stream.port}/)")
            outputs.append(stream)
    except BaseException:
        for out in outputs:
            out.close()
        raise
    return outputs


class App:
    """Builds the parts of a run from ``Options`` and runs them; ``controls`` steers
    the run (see the module docstring). Parts are built in the order they need each
    other: the source and outputs, the face processor, the window (its GL context),
    the renderer and the render stage, the Controls, the window's view (its keys steer
    the Controls), the pipeline; then the start-up settings go through the Controls
    as any later change would (occlusion, the --source-face photos)."""

    def __init__(self, options: Options, notify: Callable[[str], None] = print):
        options.validate()
        from realtime.core.weights import resolve_bundle
        from realtime.live.engines import resolve_device, settle_threads
        from realtime.live.faces import FaceProcessor
        from realtime.live.smooth import OneEuroConfig, OneEuroFilter

        self.options, self.notify = options, notify
        self.device = resolve_device(options.device)
        self.outputs = Outputs()
        self.processor = self.stage = self.window = self.view = self.renderer = None
        self.render_ctx = self.pipeline = None
        self.attached: list = []
        self._closed = False
        if options.profile:
            check_writable(options.profile)
        self.source = build_source(options, notify)
        try:
            self.outputs = Outputs(build_outputs(options, self.source, notify))
            self.profiler = Profiler()
            self.hud = Hud(self.profiler, on=options.hud)
            self.bundle = resolve_bundle(options.weights, options.model)
            self.smoothing = OneEuroConfig()
            mirror = options.mirror if options.mirror is not None else self.device.startswith("cuda")
            self.processor = FaceProcessor.from_bundle(
                self.bundle,
                options.backend,
                self.device,
                engine_options={"mirror": mirror, "verbose": True, "retime": options.retime},
                filter_factory=lambda: OneEuroFilter(self.smoothing),
                max_faces=options.faces,
            )
            settle_threads(self.processor.engine, self.device)
            effect = options.effect if options.effect not in (None, "swap") else "none"  # the swap: below
            if options.window:
                self.window = self._open_window()
            if options.window or effect != "none" or options.source_faces or options.panel is not None:
                self.stage = self._make_stage(effect)
            keeps = options.output or options.vcam or options.stream is not None or options.panel is not None
            if not options.window and not keeps and not options.profile:
                notify("headless with no --output, --vcam, --stream or --profile: nothing will be kept")
            self.controls = Controls(
                self.processor,
                self.stage,
                self.outputs,
                self.hud,
                self.profiler,
                self.smoothing,
                self.bundle.layout,
                make_swap=self._make_swap,
                source=self.source,
            )
            if self.window is not None:
                from realtime.outputs.window import WindowView

                renderer = self.renderer
                drawn = (lambda: renderer.output) if renderer is not None else None
                self.view = WindowView(self.window, self.controls, drawn)
            live = options.window or options.realtime or options.panel is not None  # watched
            # a camera (or a watched run) is paced by its source: frames wait for no one,
            # so the visibility network runs beside the engine, for latency
            self.processor.set_overlap(live or isinstance(self.source, CameraSource))
            self.pipeline = Pipeline(
                self.source,
                processor=self.processor,
                stage=self.stage,
                outputs=self.outputs,
                window=self.view,
                profiler=self.profiler,
                paced=live,
                max_frames=options.frames,
                hud=self.hud,
                reconnect_s=options.reconnect,
                notify=notify,
            )
            if options.occlusion and self.stage is not None:
                self.controls.set_occlusion(True)
            if options.source_faces:
                photos = [(read_photo(path), Path(path).name) for path in options.source_faces]
                self.controls.set_source_faces(photos, rest=options.source_face_rest)
        except BaseException:
            self.close()
            raise

    # -- building --------------------------------------------------------------------
    def _open_window(self):
        if platform.system() == "Linux" and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise UsageError("no display for the window: add --no-window (or run under xvfb-run)")
        from realtime.outputs.window import Window

        w, h = self.source.size
        return Window(w, h, title="PRNet Live")

    def _make_stage(self, effect: str):
        from realtime.render.context import create_context
        from realtime.render.renderer import Renderer
        from realtime.render.stage import RenderStage

        if self.window is None:
            self.render_ctx = create_context()  # headless: ours to release
        ctx = self.window.ctx if self.window is not None else self.render_ctx
        w, h = self.source.size
        self.renderer = Renderer(self.bundle.layout, w, h, ctx)
        return RenderStage(
            self.renderer, effect, read=bool(self.outputs.current), on_screen=self.window is not None
        )

    def _make_swap(self, photo: np.ndarray, name: str):
        """The swap Effect for the face in ``photo``: reconstructed over several crops
        (a few seconds), unwrapped, with the run's --swap-shape and --swap-tone."""
        from realtime.live.faces import PHOTO_CROPS
        from realtime.render.effects.swap import DEFAULT_SHAPE, FaceSwap

        assert self.processor is not None
        self.notify(f"source face {name}: fitting and unwrapping it (a few seconds)")
        face = self.processor.reconstruct_photo(photo, name, one_face=True, crops=PHOTO_CROPS)
        shape = DEFAULT_SHAPE if self.options.swap_shape is None else self.options.swap_shape
        swap = FaceSwap(self.bundle.layout, photo, face, shape=shape, tone=self.options.swap_tone)
        for line in swap.warnings:
            self.notify(f"source face {name}: {line}")
        return swap

    def attach(self, part) -> None:
        """Close ``part`` (e.g. a control panel) with the run, before anything else."""
        self.attached.append(part)

    # -- running ---------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run until the input ends, --frames, the window closes or Ctrl-C; closes all."""
        assert self.pipeline is not None
        pipeline = self.pipeline
        signal.signal(signal.SIGTERM, lambda *_: pipeline.stop())
        try:
            return pipeline.run()
        finally:
            self.close()

    def main(self) -> int:
        """``run`` with the user's messages, the profile files, and the exit status."""
        from realtime.live.profile_report import write_profile

        result = self.run()
        options, notify = self.options, self.notify
        lat = self.profiler.summary()["latency_ms"]
        notify(
            f"{result.frames_out} frames in {result.elapsed_s:.1f} s ({result.fps:.1f} fps), "
            f"latency p50 {lat['p50']:.1f} ms p95 {lat['p95']:.1f} ms, dropped {result.dropped}"
            + ("" if result.reason in ("end of input", "frames") else f"; stopped: {result.reason}")
        )
        if options.output:
            notify(f"wrote {options.output}")
        if options.profile:
            meta = {
                "source": self.source.name,
                "size": list(self.source.size),
                "source_fps": self.source.fps,
                "paced": self.pipeline.live if self.pipeline else None,
                "renderer": self.stage is not None,
                "backend": self.processor.engine.name if self.processor is not None else None,
                "mirror": self.controls.mirror,
                "occlusion": self.controls.occlusion,
                "device": self.device,
                "reason": result.reason,
                "error": result.error,
            }
            paths = write_profile(self.profiler, options.profile, meta)
            trace, chart = paths["trace"].name, paths["chart"].name
            notify(f"wrote {paths['summary']}, {trace} (open it in ui.perfetto.dev), {chart}")
        if result.error:
            notify(result.error)
            return EXIT_INPUT_ENDED_EARLY
        return EXIT_OK

    def close(self) -> None:
        """Close every part once. Attached parts first; outputs and the source: by the
        pipeline once it ran (it knows when its capture thread is done with the
        source), else here. The processor's detection thread; then GL objects while
        their context lives, and the window with its context."""
        if self._closed:
            return
        self._closed = True
        for part in self.attached:
            part.close()
        if self.pipeline is None or not self.pipeline.ran:
            self.outputs.close()
            self.source.close()
        if self.processor is not None:
            self.processor.close()
        if self.renderer is not None:
            self.renderer.release()
        if self.view is not None:
            self.view.close()
        elif self.window is not None:
            self.window.close()
        if self.render_ctx is not None:
            self.render_ctx.release()


def read_photo(path: str) -> np.ndarray:
    """A source-face photo from disk (BGR uint8); UsageError (one line) if unreadable."""
    import cv2

    if not Path(path).is_file():
        raise UsageError(f"--source-face {path}: no such file")
    photo = cv2.imread(path, cv2.IMREAD_COLOR)
    if photo is None:
        raise UsageError(f"--source-face {path}: not a readable image")
    return photo
