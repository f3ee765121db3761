"""The live app as a library: one frame's way from capture to output, assembled.

    source (realtime.capture) --> Pipeline (realtime.pipeline): three threads
        capture thread:    Grabber reads the source            -> Frame
        inference thread:  FaceProcessor (realtime.faces)      -> FaceResult
                           detect/track -> crop -> engine -> decode -> smooth
        main (GL) thread:  RenderStage (realtime.render.stage) -> image
                           -> outputs (realtime.outputs) and the window view

``App(Options(...))`` builds every part from what the flags say, ``run()`` runs them
and closes each exactly once (also on errors and Ctrl-C); ``main()`` adds the user's
messages and the exit status. While it runs, the effect, the swap's source face, the
mirror averaging, the smoothing and the outputs can be changed from any thread (a
control panel does).

    from realtime.app import App, Options
    result = App(Options(demo=True, window=False, output="out.mp4", frames=150)).run()
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from realtime.capture import CameraSource, DemoSource, Source, open_input
from realtime.outputs import MjpegStreamOutput, VirtualCamOutput, check_writable, open_file_output
from realtime.pipeline import Output, Pipeline
from realtime.profiler import Profiler
from realtime.types import RunResult, UsageError, UserError

EXIT_OK, EXIT_INPUT_ENDED_EARLY, EXIT_USAGE = 0, 1, 2


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
    source_face: str | None = None
    swap_shape: float = 0.0  # 0: the live face's geometry; 1: the source's face shape
    faces: int = 4
    weights: str | None = None
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
            stream = MjpegStreamOutput(o.stream)
            notify(f"MJPEG stream: {stream.url} (page: http://{stream.host}:{stream.port}/)")
            outputs.append(stream)
    except BaseException:
        for out in outputs:
            out.close()
        raise
    return outputs


class App:
    """Builds the parts of a run from ``Options``; see the module docstring."""

    def __init__(self, options: Options, notify: Callable[[str], None] = print):
        import torch

        from realtime.decode import Decoder
        from realtime.engines import MirrorAveraged, create_engine, resolve_device, settle_threads
        from realtime.faces import FaceProcessor
        from realtime.smooth import OneEuroConfig, OneEuroFilter
        from realtime.weights import load_bundle

        self.options, self.notify = o, notify = options, notify
        self.device = resolve_device(o.device)
        self.mirror = o.mirror if o.mirror is not None else self.device.startswith("cuda")
        self.outputs: list[Output] = []
        self.stage = self.view = self.renderer = self.render_ctx = self.pipeline = self.panel = None
        self._closed = False
        if o.profile:
            check_writable(o.profile)
        self.source = build_source(o, notify)
        try:
            self.outputs = build_outputs(o, self.source, notify)
            self.profiler = Profiler()
            self.bundle = load_bundle(o.weights)
            engine = create_engine(
                self.bundle, o.backend, self.device, verbose=True, mirror=self.mirror, retime=o.retime
            )
            # Plain and mirrored share the one network: toggling mirror averaging is free.
            self.engine = engine.inner if isinstance(engine, MirrorAveraged) else engine
            settle_threads(self.engine, self.device)
            self.mirrored = (
                engine if isinstance(engine, MirrorAveraged) else MirrorAveraged(engine, self.bundle.layout)
            )
            self.smoothing = OneEuroConfig()
            self.processor = FaceProcessor(
                self.mirrored if self.mirror else self.engine,
                Decoder(self.bundle.layout),
                filter_factory=lambda: OneEuroFilter(self.smoothing),
                max_faces=o.faces,
                device=torch.device(self.device),
            )
            effect = "swap" if o.source_face else (o.effect or "none")
            window = self._make_window(effect) if o.window else None
            if window is not None or effect != "none" or o.panel is not None:
                self._make_stage(effect, window)
            self.visibility = None  # loaded only where something is drawn over faces
            if o.occlusion and self.stage is not None:
                stage = self.stage
                self.processor.needs_visibility = lambda: stage.draws_surfaces  # not for overlays
                self.set_occlusion(True)
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
            if o.panel is not None:
                from realtime.panel import Panel

                self.panel = Panel(self, o.panel, o.panel_host)
                notify(f"control panel: {self.panel.url}")
        except BaseException:
            self.close()
            raise

    # -- building --------------------------------------------------------------------
    def _make_window(self, effect: str):
        if platform.system() == "Linux" and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise UsageError("no display for the window: add --no-window (or run under xvfb-run)")
        from realtime.render.effects import EFFECTS
        from realtime.render.window import Window, WindowView

        effects = list(EFFECTS)
        if effect not in effects:
            effects.append(effect)  # swap, mask:PATH
        w, h = self.source.size
        window = Window(w, h, title="PRNet Live", effects=effects, effect=effect)
        self.view = WindowView(window, lambda: [*self.profiler.hud_lines(), self.status])
        return window

    def _make_stage(self, effect: str, window) -> None:
        from realtime.render.context import create_context
        from realtime.render.renderer import Renderer
        from realtime.render.stage import RenderStage

        if window is None:
            self.render_ctx = create_context()  # headless: ours to release
        ctx = window.ctx if window is not None else self.render_ctx
        w, h = self.source.size
        self.renderer = Renderer(self.bundle.layout, w, h, ctx)
        if self.options.source_face:
            self.renderer.add_effect(self._swap_effect(self._read_photo(self.options.source_face)))
        self.stage = RenderStage(self.renderer, effect, window, self.view, read=bool(self.outputs))

    @staticmethod
    def _read_photo(path: str) -> np.ndarray:
        import cv2

        if not Path(path).is_file():
            raise UsageError(f"--source-face {path}: no such file")
        photo = cv2.imread(path, cv2.IMREAD_COLOR)
        if photo is None:
            raise UsageError(f"--source-face {path}: not a readable image")
        return photo

    def _swap_effect(self, photo: np.ndarray, what: str = "--source-face"):
        from realtime.render.effects.swap import FaceSwap

        source = self.processor.reconstruct_photo(photo, f"{what} {self.options.source_face or ''}".strip())
        return FaceSwap(self.bundle.layout, photo, source, shape=self.options.swap_shape)

    # -- steering while it runs (any thread) -----------------------------------------
    @property
    def status(self) -> str:
        return self.stage.status if self.stage is not None else ""

    @property
    def effects(self) -> list[str]:
        return self.stage.effects if self.stage is not None else ["none"]

    @property
    def effect(self) -> str:
        return self.stage.effect if self.stage is not None else "none"

    def set_effect(self, name: str) -> None:
        """Switch the effect from the next frame; EffectError if unknown."""
        if self.stage is None:
            raise UsageError("this run draws nothing (effect none, no window): start it with an --effect")
        self.stage.set_effect(name)

    def set_source_face(self, photo: np.ndarray, what: str = "source face") -> None:
        """Swap onto the live faces the face in ``photo`` (BGR uint8), from the next
        frame; UserError (one line) when it holds no usable face."""
        if self.stage is None:
            raise UsageError("this run draws nothing (effect none, no window): start it with an --effect")
        from realtime.render.effects.swap import FaceSwap

        source = self.processor.reconstruct_photo(photo, what)
        self.stage.add_effect(FaceSwap(self.bundle.layout, photo, source, shape=self.options.swap_shape))

    def set_mirror(self, on: bool) -> None:
        """Mirror averaging on or off, from the next frame."""
        self.mirror = on
        self.processor.engine = self.mirrored if on else self.engine

    @property
    def occlusion(self) -> bool | None:
        """Whether what covers a face stays in front of effects; None where this run
        draws nothing over faces."""
        return None if self.stage is None else self.processor.visibility is not None

    def set_occlusion(self, on: bool) -> None:
        """Occlusion-aware effects on or off, from the next frame (the network loads on
        first use)."""
        if on and self.visibility is None:
            from realtime.occlusion import load_visibility

            self.visibility = load_visibility(self.device)
        self.processor.visibility = self.visibility if on else None

    def set_smoothing(self, strength: float) -> None:
        """0 turns smoothing off; 0.5 is the default One Euro filter; 1 the steadiest
        (cut-off 10x lower when still: steadier, more lag in slow motion)."""
        strength = min(max(float(strength), 0.0), 1.0)
        # A cut-off far above the frame rate passes every frame through unchanged.
        self.smoothing.min_cutoff = 0.1 * 10 ** (2 * (0.5 - strength)) if strength > 0 else 1e9

    def set_hud(self, on: bool) -> None:
        if self.pipeline is not None:
            self.pipeline.hud = on
        if self.view is not None:
            self.view.window.hud = on

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
                "backend": self.engine.name,
                "mirror": self.mirror,
                "occlusion": self.occlusion,
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
        """Close every part once. Outputs and the source: by the pipeline once it ran
        (it knows when its capture thread is done with the source), else here. Then GL
        objects while their context lives, and the window with its context."""
        if self._closed:
            return
        self._closed = True
        if self.panel is not None:
            self.panel.close()
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


def say(message: str) -> None:
    """One line for the user, on stderr."""
    print(f"prnet-live: {message}", file=sys.stderr, flush=True)


def command() -> None:
    """The ``prnet-live`` command (and ``python run_live.py``): ``main``, then exit at
    once. By then every output is closed and playable; what is left is the interpreter's
    teardown, a collection over every object torch, numba and scipy made, which took 1 s
    idle and over 10 s on a loaded 2-core machine after Ctrl-C. Nothing of ours needs it."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Flags, run, exit status: the command's work, callable in-process (tests, scripts)."""
    from realtime.cli import check_flags, parse_args

    args = parse_args(argv)
    try:
        check_flags(args)
        return App(Options.from_args(args), notify=say).main()
    except KeyboardInterrupt:  # Ctrl-C while loading: nothing to flush yet
        say("interrupted")
        return 130
    except Exception as e:
        if not isinstance(e, UserError):
            raise  # a bug: the traceback is what a developer needs
        say(f"error: {e}")
        return EXIT_USAGE
