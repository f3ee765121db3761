"""The live app as a library: one frame's way from capture to output, assembled.

    source (realtime.live.capture) --> Pipeline (realtime.live.pipeline): three threads
        capture thread:    Grabber reads the source              -> Frame
        inference thread:  FaceProcessor (realtime.live.faces)   -> FaceResult
                           detect/track -> crop -> engine -> decode -> smooth
        main (GL) thread:  RenderStage (realtime.render.stage)   -> image
                           -> outputs (realtime.outputs) and the window view

``App(Options(...))`` builds every part from what the flags say, ``run()`` runs them
and closes each exactly once (also on errors and Ctrl-C); ``main()`` adds the user's
messages and the exit status. ``app.controls`` (realtime.app.controls) steers the run
from any thread while it runs: the effect, the swap's source face, mirror averaging,
smoothing, occlusion, the HUD and the outputs.

    from realtime.app import App, Options
    result = App(Options(demo=True, window=False, output="out.mp4", frames=150)).run()
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from realtime.app.controls import Controls
from realtime.core.types import RunResult, UsageError
from realtime.live.capture import CameraSource, DemoSource, Source, open_input
from realtime.live.pipeline import Output, Pipeline
from realtime.live.profiler import Profiler
from realtime.outputs import VirtualCamOutput, check_writable, open_file_output

EXIT_OK, EXIT_INPUT_ENDED_EARLY = 0, 1


@dataclass
class Options:
    """What a run does; the flags of ``prnet-live --help`` under the same names."""

    camera: str | None = None  # webcam index or device path
    input: str | None = None  # video file, image or folder of images
    demo: bool = False  # with no camera and no input, the demo runs anyway
    size: str | None = None  # WxH asked of the camera or the demo
    output: str | None = None
    window: bool = True
    vcam: bool = False
    stream: int | None = None  # MJPEG stream port
    panel: int | None = None  # control page port (realtime.panel)
    panel_host: str = "127.0.0.1"  # beyond loopback the page needs the token printed at start
    profile: str | None = None  # .json path
    hud: bool = False
    realtime: bool = False
    reconnect: float = 10.0
    frames: int | None = None
    effect: str | None = None
    source_face: list[str] | str | None = None  # photos; faces take them left to right
    source_face_rest: str | None = None  # faces beyond them: first or none (None: first with one photo)
    swap_shape: float | None = None  # 0: the live face's geometry; 1: the source's shape (None: 1)
    swap_tone: str = "live"  # live: the live face's skin tone; source: the source's
    faces: int = 4
    weights: str | None = None  # a bundle's path, instead of a shipped model
    model: str = "auto"  # a shipped model by name (realtime.core.paths.MODELS)
    backend: str = "auto"
    mirror: bool | None = None  # None: on with a CUDA device, off on a CPU
    occlusion: bool = True  # hands, hair, glasses in front of the face stay in front of effects
    device: str = "auto"
    retime: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        return cls(**values, window=not args.no_window)


def parse_size(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    if text is None:
        return default
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: write it as WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise UsageError(f"--size {text}: width and height must be between 16 and 8192")
    return w, h


def build_source(o: Options, notify: Callable[[str], None]) -> Source:
    if o.camera is not None:
        device = int(o.camera) if o.camera.isdigit() else o.camera
        w, h = parse_size(o.size, (1280, 720))
        source = CameraSource(device, w, h)
        g = source.granted
        notify(
            f"camera {device}: {g['width']}x{g['height']} @ {g['fps']:.0f} fps {g['fourcc']} "
            f"(asked {w}x{h} MJPG)"
        )
        return source
    if o.input:
        held = o.window or o.panel is not None  # a still: once headless, held while watched
        once = o.frames or (None if held else 1)
        return open_input(o.input, image_frames=once)
    w, h = parse_size(o.size, (640, 480))
    return DemoSource(w, h)


def build_outputs(o: Options, source: Source, notify: Callable[[str], None]) -> list[Output]:
    outputs: list[Output] = []
    try:
        if o.output:
            outputs.append(open_file_output(o.output, fps=source.fps))
        if o.vcam:
            w, h = source.size
            cam = VirtualCamOutput(w, h, source.fps)
            notify(f"virtual camera: {cam.device}")
            outputs.append(cam)
        if o.stream is not None:
            from realtime.outputs.http import StreamOutput

            stream = StreamOutput(o.stream)
            notify(f"MJPEG stream: {stream.url} (page: http://{stream.host}:{stream.port}/)")
            outputs.append(stream)
    except BaseException:
        for out in outputs:
            out.close()
        raise
    return outputs


class App:
    """Builds the parts of a run from ``Options`` and runs them; ``controls`` steers
    the run (see the module docstring)."""

    def __init__(self, options: Options, notify: Callable[[str], None] = print):
        from realtime.core.weights import resolve_bundle
        from realtime.live.engines import resolve_device, settle_threads
        from realtime.live.faces import FaceProcessor
        from realtime.live.occlusion import load_visibility
        from realtime.live.smooth import OneEuroConfig, OneEuroFilter

        self.options, self.notify = o, notify = options, notify
        self.device = resolve_device(o.device)
        self.outputs: list[Output] = []
        self.stage = self.view = self.renderer = self.render_ctx = self.pipeline = None
        self.attached: list = []
        self._closed = False
        if o.profile:
            check_writable(o.profile)
        self.source = build_source(o, notify)
        try:
            self.outputs = build_outputs(o, self.source, notify)
            self.profiler = Profiler()
            self.bundle = resolve_bundle(o.weights, o.model)
            self.smoothing = OneEuroConfig()
            self.processor = FaceProcessor.from_bundle(
                self.bundle,
                o.backend,
                self.device,
                mirror=o.mirror if o.mirror is not None else self.device.startswith("cuda"),
                verbose=True,
                retime=o.retime,
                filter_factory=lambda: OneEuroFilter(self.smoothing),
                max_faces=o.faces,
            )
            settle_threads(self.processor.engine, self.device)
            effect = "swap" if o.source_face else (o.effect or "none")  # a str or a non-empty list
            window = self._make_window(effect) if o.window else None
            if window is not None or effect != "none" or o.panel is not None:
                self._make_stage(effect, window)
            if self.stage is not None:
                stage = self.stage
                self.processor.needs_visibility = lambda: stage.draws_surfaces  # not for overlays
            kept = o.output or o.vcam or o.stream is not None or o.panel is not None or o.profile
            if not o.window and not kept:
                notify("headless with no --output, --vcam, --stream or --profile: nothing will be kept")
            self.pipeline = Pipeline(
                self.source,
                processor=self.processor,
                renderer=self.stage,
                outputs=self.outputs,
                window=self.view,
                profiler=self.profiler,
                paced=o.window or o.realtime or o.panel is not None,  # a watched run is live
                max_frames=o.frames,
                hud=o.hud,
                reconnect_s=o.reconnect,
                notify=notify,
            )
            self.controls = Controls(
                self.processor,
                self.stage,
                self.pipeline,
                self.profiler,
                self.smoothing,
                self.bundle.layout,
                make_swap=self._swap_effect,
                load_visibility=lambda: load_visibility(self.device),
                source=(self.source.name, self.source.fps),
                hud=o.hud or window is not None,  # a window shows its figures by default
            )
            if window is not None:
                window.steering = self.controls
            if o.occlusion and self.stage is not None:
                self.controls.set_occlusion(True)
        except BaseException:
            self.close()
            raise

    # -- building --------------------------------------------------------------------
    def _make_window(self, effect: str):
        if platform.system() == "Linux" and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise UsageError("no display for the window: add --no-window (or run under xvfb-run)")
        from realtime.outputs.window import Window, WindowView

        w, h = self.source.size
        window = Window(w, h, title="PRNet Live", effect=effect)
        self.view = WindowView(window, self._hud_lines)
        return window

    def _hud_lines(self) -> list[str]:
        """The window's HUD: the figures, the faces' status and their numbers."""
        numbers = " ".join(f"#{f['track']}" for f in self.controls.faces())
        return [*self.profiler.hud_lines(), self.controls.status + (f": {numbers}" if numbers else "")]

    def _make_stage(self, effect: str, window) -> None:
        from realtime.render.context import create_context
        from realtime.render.effects.facemap import FaceMap
        from realtime.render.renderer import Renderer
        from realtime.render.stage import RenderStage

        if window is None:
            self.render_ctx = create_context()  # headless: ours to release
        ctx = window.ctx if window is not None else self.render_ctx
        w, h = self.source.size
        self.renderer = Renderer(self.bundle.layout, w, h, ctx)
        paths = self.source_faces
        if paths:
            swaps = []
            for path in paths:
                what = f"--source-face {path}"
                photo = read_photo(path)
                swaps.append(
                    self._swap_effect(photo, self.processor.reconstruct_photo(photo, what, alone=True))
                )
            rest = self.options.source_face_rest or ("first" if len(paths) == 1 else "none")
            self.renderer.add_effect(FaceMap(swaps, [Path(p).name for p in paths], rest=rest))
        drawn = self.view.drawn if self.view is not None else None
        self.stage = RenderStage(self.renderer, effect, read=bool(self.outputs), on_drawn=drawn)

    @property
    def source_faces(self) -> list[str]:
        """The --source-face photos, in the order faces take them."""
        given = self.options.source_face
        return [given] if isinstance(given, str) else list(given or [])

    def _swap_effect(self, photo: np.ndarray, source):
        from realtime.render.effects.swap import DEFAULT_SHAPE, FaceSwap
        from realtime.render.effects.swap_source import fit_photo

        self.notify("source face: fitting and unwrapping it (a few seconds)")
        o = self.options
        fitted = fit_photo(self.processor, photo, source)
        shape = DEFAULT_SHAPE if o.swap_shape is None else o.swap_shape
        swap = FaceSwap(self.bundle.layout, photo, fitted, shape=shape, tone=o.swap_tone)
        for line in swap.warnings:
            self.notify(f"source face: {line}")
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
        result = self.run()
        o, notify = self.options, self.notify
        lat = self.profiler.summary()["latency_ms"]
        notify(
            f"{result.frames_out} frames in {result.elapsed_s:.1f} s ({result.fps:.1f} fps), "
            f"latency p50 {lat['p50']:.1f} ms p95 {lat['p95']:.1f} ms, dropped {result.dropped}"
            + ("" if result.reason in ("end of input", "frames") else f"; stopped: {result.reason}")
        )
        if o.output:
            notify(f"wrote {o.output}")
        if o.profile:
            meta = {
                "source": self.source.name,
                "size": list(self.source.size),
                "source_fps": self.source.fps,
                "paced": self.pipeline.live if self.pipeline else None,
                "renderer": self.stage is not None,
                "backend": self.processor.engine.name,
                "mirror": self.controls.mirror,
                "occlusion": self.controls.occlusion,
                "device": self.device,
                "reason": result.reason,
                "error": result.error,
            }
            paths = self.profiler.write(o.profile, meta)
            trace, chart = paths["trace"].name, paths["chart"].name
            notify(f"wrote {paths['summary']}, {trace} (open it in ui.perfetto.dev), {chart}")
        if result.error:
            notify(result.error)
            return EXIT_INPUT_ENDED_EARLY
        return EXIT_OK

    def close(self) -> None:
        """Close every part once. Attached parts first; outputs and the source: by the
        pipeline once it ran (it knows when its capture thread is done with the
        source), else here. Then GL objects while their context lives, and the window
        with its context."""
        if self._closed:
            return
        self._closed = True
        for part in self.attached:
            part.close()
        if self.pipeline is None or not self.pipeline.ran:
            for out in self.outputs:
                out.close()
            self.source.close()
        if self.renderer is not None:
            self.renderer.release()
        if self.view is not None:
            self.view.close()
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
