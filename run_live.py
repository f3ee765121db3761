#!/usr/bin/env python
"""PRNet Live: 3D face reconstruction and AR effects on a camera, a video, images or
the built-in demo, shown in a window and/or written to files, a virtual camera or a
local MJPEG stream.

    python run_live.py                      # demo source in a window
    python run_live.py --camera 0           # webcam
    python run_live.py --input clip.mp4 --output out.mp4 --no-window --profile out/p.json
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from pathlib import Path

from realtime.types import UserError  # importing realtime also quiets FFmpeg/OpenCV logs

EXIT_OK, EXIT_INPUT_ENDED_EARLY, EXIT_USAGE = 0, 1, 2
HUD_PERIOD_S = 0.25  # the window's HUD text is redrawn at ~4 Hz: figures readable, no per-frame text


class UsageError(UserError):
    """Flags that cannot work together, or a value out of range."""


def _say(message: str) -> None:
    print(f"prnet-live: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="run_live.py",
        description="Real-time PRNet 3D face reconstruction and AR effects. With no --camera or "
        "--input it runs the demo source (a face photo moving like a head), so it works with no "
        "camera and no files.",
        epilog="Keys in the window: H toggles the profiler HUD, E cycles effects, Q or Esc quits. "
        "Exit status: 0 done; 1 input ended early (damaged video, camera lost), outputs still "
        "written; 2 bad input or flags.",
    )
    src = p.add_argument_group("input (pick one)")
    src.add_argument("--camera", metavar="N", help="webcam index (0, 1, ...) or device path (/dev/video2)")
    src.add_argument("--input", metavar="PATH", help="a video file, an image, or a folder of images")
    src.add_argument(
        "--demo", action="store_true", help="built-in demo: a face photo moved along a head path"
    )
    src.add_argument(
        "--size",
        metavar="WxH",
        default=None,
        help="resolution to ask the camera for (default 1280x720, MJPG) or of demo frames (default 640x480)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--output", metavar="PATH", help="write a video (.mp4 .avi .mkv .mov) or, for stills, a .png/.jpg"
    )
    out.add_argument(
        "--no-window", action="store_true", help="run headless: no window (files, vcam, stream only)"
    )
    out.add_argument(
        "--vcam", action="store_true", help="send frames to a virtual camera (v4l2loopback / OBS)"
    )
    out.add_argument(
        "--stream", metavar="PORT", type=int, help="serve an MJPEG stream on http://127.0.0.1:PORT/"
    )
    out.add_argument(
        "--profile", metavar="PATH", help="write timings: PATH.json summary, .trace.json, .png chart"
    )
    out.add_argument("--hud", action="store_true", help="draw live fps/latency figures on the frames")
    out.add_argument(
        "--realtime",
        action="store_true",
        help="pace files and the demo at their fps even without a window, dropping frames a slow stage "
        "cannot keep up with, as with a live camera (default headless: every frame, as fast as possible)",
    )
    out.add_argument(
        "--reconnect",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="how long to retry a camera that stops sending frames (default 10)",
    )
    out.add_argument(
        "--frames", metavar="N", type=int, help="stop after N output frames (default: end of input)"
    )
    fx = p.add_argument_group("effects and model")
    fx.add_argument(
        "--effect",
        metavar="NAME",
        help="effect to render: none, paint, tiger, metal, grid, landmarks, "
        "wireframe, pose, depth, mask:PATH.png (default none; swap with --source-face)",
    )
    fx.add_argument("--source-face", metavar="PATH", help="photo of a face to swap onto the live face(s)")
    fx.add_argument(
        "--faces",
        metavar="N",
        type=int,
        default=4,
        help="most faces reconstructed per frame; more are counted (default 4)",
    )
    fx.add_argument(
        "--weights", metavar="PATH", help="weights bundle (default: best one shipped in weights/)"
    )
    fx.add_argument(
        "--backend",
        metavar="NAME",
        default="auto",
        help="inference engine: auto picks the fastest available (default auto)",
    )
    fx.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each face's reconstruction with its mirror image's: more accurate "
        "and steadier, for twice the inference (default: on with a CUDA --device, off on "
        "a CPU, where the second pass costs latency)",
    )
    fx.add_argument(
        "--device",
        metavar="NAME",
        default="cpu",
        help="torch device for inference: cpu, cuda, cuda:1 (default cpu)",
    )
    return p.parse_args(argv)


def _parse_size(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    if text is None:
        return default
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: write it as WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise UsageError(f"--size {text}: width and height must be between 16 and 8192")
    return w, h


def check_flags(args: argparse.Namespace) -> None:
    """Conflicts and ranges, before anything slow is loaded."""
    chosen = [
        f
        for f, on in (("--camera", args.camera is not None), ("--input", args.input), ("--demo", args.demo))
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} conflict: choose one input")
    if args.frames is not None and args.frames < 1:
        raise UsageError(f"--frames {args.frames}: must be 1 or more")
    if args.faces < 1:
        raise UsageError(f"--faces {args.faces}: must be 1 or more")
    if args.stream is not None and not 0 <= args.stream <= 65535:
        raise UsageError(f"--stream {args.stream}: a TCP port is 0..65535 (0 picks a free one)")
    if args.profile and not args.profile.endswith(".json"):
        raise UsageError(f"--profile {args.profile}: give a .json path, e.g. out/profile.json")
    if args.source_face and args.effect not in (None, "swap"):
        raise UsageError(
            f"--source-face swaps faces, --effect {args.effect} is another effect: use one of the two"
        )
    if args.effect == "swap" and not args.source_face:
        raise UsageError("--effect swap needs --source-face PHOTO (the face to put on)")
    if args.source_face and not Path(args.source_face).is_file():
        raise UsageError(f"--source-face {args.source_face}: no such file")
    if args.output and args.input:
        same = Path(args.output).resolve() == Path(args.input).resolve()
        if same:
            raise UsageError("--output is the --input file: it would be overwritten; choose another path")
    if args.realtime and args.camera is not None:
        raise UsageError("--realtime is for files and the demo: a camera is always real time")
    if args.mirror is None:
        args.mirror = args.device.startswith("cuda")


def build_source(args: argparse.Namespace, window: bool):
    from realtime.capture import CameraSource, DemoSource, open_input

    if args.camera is not None:
        device = int(args.camera) if args.camera.isdigit() else args.camera
        w, h = _parse_size(args.size, (1280, 720))
        source = CameraSource(device, w, h)
        g = source.granted
        _say(
            f"camera {device}: {g['width']}x{g['height']} @ {g['fps']:.0f} fps {g['fourcc']} "
            f"(asked {w}x{h} MJPG)"
        )
        return source
    if args.input:
        once = args.frames or (None if window else 1)  # a still: once headless, held in a window
        return open_input(args.input, image_frames=once)
    w, h = _parse_size(args.size, (640, 480))
    return DemoSource(w, h)


def is_user_error(e: BaseException) -> bool:
    """Whether ``e`` is a user error: print its one line, no traceback."""
    return isinstance(e, UserError)


class WindowView:
    """Shows frames in the glfw window of realtime.render.window: the renderer's output
    texture when the frame is the one it just drew (no upload; ``None`` when it was not
    read back), else the frame itself uploaded to a texture (pass-through, status bar).
    The window draws its own HUD."""

    def __init__(self, window, hud_lines):
        self.window, self.hud_lines = window, hud_lines
        self.rendered = None  # (image or None, texture) the renderer produced last
        self.texture = None
        self._hud: list[str] = []
        self._hud_t = -1e9

    def show(self, image) -> None:
        if self.rendered is not None and image is self.rendered[0]:
            texture = self.rendered[1]
        else:
            h, w = image.shape[:2]
            if self.texture is None or self.texture.size != (w, h):
                if self.texture is not None:
                    self.texture.release()
                self.texture = self.window.ctx.texture((w, h), 3, alignment=1)
            self.texture.write(image)
            texture = self.texture
        hud = None
        if self.window.hud:
            now = time.monotonic()
            if now - self._hud_t >= HUD_PERIOD_S:
                self._hud, self._hud_t = self.hud_lines(), now
            hud = self._hud
        self.window.show(texture, hud)

    def poll(self) -> None:
        """Handle window events (keys, close) while there is nothing to show yet."""
        self.window.poll()

    def should_close(self) -> bool:
        return not self.window.open

    def close(self) -> None:
        if self.texture is not None:
            self.texture.release()
            self.texture = None
        self.window.close()


class RenderStage:
    """The pipeline's renderer: draws each frame with the effect the window shows (or
    --effect), reading the pixels back only when ``read`` (an output needs them);
    else it returns None and the window shows the renderer's texture."""

    def __init__(self, renderer, effect: str, window, view: WindowView | None, read: bool):
        self.renderer, self.effect, self.window, self.view = renderer, effect, window, view
        self.read_back = read
        self.status = ""

    def __call__(self, frame, result):
        faces = result.reconstructions if result is not None else []
        self.status = result.status if result is not None else ""
        name = self.window.effect if self.window is not None else self.effect
        image = self.renderer.render(frame.image, faces, name, read=self.read_back)
        if self.view is not None:
            self.view.rendered = (image, self.renderer.output)
        return image

    def read(self):
        """The last drawn frame's pixels (the pipeline asks when it needs them)."""
        return self.renderer.read()


class Stages:
    """The processor, renderer and window. Frames pass through unchanged only with
    effect "none" and no window, where nothing needs drawing."""

    def __init__(
        self, args: argparse.Namespace, size: tuple[int, int], want_window: bool, hud_lines, read: bool
    ):
        self.args, self.size = args, size
        self.renderer = self.view = self.gl = self.render_ctx = None
        effect = "swap" if args.source_face else (args.effect or "none")
        self.processor = self._make_processor()
        window = self._make_window(effect) if want_window else None
        if window is not None:
            self.view = WindowView(window, lambda: [*hud_lines(), self.status])
        try:
            if window is not None or effect != "none":
                self.renderer = self._make_renderer(effect, window, read)
        except BaseException:  # a bad mask or source face: no window left behind
            self.close()
            raise

    @property
    def status(self) -> str:
        return self.renderer.status if self.renderer is not None else ""

    def _make_processor(self):
        import torch

        from realtime.decode import Decoder
        from realtime.engines import create_engine
        from realtime.faces import FaceProcessor
        from realtime.weights import load_bundle

        args = self.args
        try:
            device = torch.device(args.device)
        except RuntimeError:
            raise UsageError(f"--device {args.device}: not a torch device (cpu, cuda, cuda:1)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(
                f"--device {args.device}: torch sees no CUDA GPU (see README, GPU install); use --device cpu"
            )
        self.bundle = load_bundle(args.weights)
        self.engine = create_engine(
            self.bundle, backend=args.backend, device=args.device, verbose=True, mirror=args.mirror
        )
        return FaceProcessor(
            self.engine, Decoder(self.bundle.layout), max_faces=args.faces, device=args.device
        )

    def _make_window(self, effect: str):
        if platform.system() == "Linux" and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise UsageError("no display for the window: add --no-window (or run under xvfb-run)")
        from realtime.render.effects import EFFECTS
        from realtime.render.window import Window

        effects = [*EFFECTS, "swap"] if self.args.source_face else list(EFFECTS)
        if effect not in effects:
            effects.append(effect)  # mask:PATH
        return Window(self.size[0], self.size[1], title="PRNet Live", effects=effects, effect=effect)

    def _make_swap(self, renderer) -> None:
        import cv2

        from realtime.decode import Decoder
        from realtime.faces import FaceProcessor
        from realtime.render.swap import FaceSwap
        from realtime.types import Frame

        path = self.args.source_face
        photo = cv2.imread(path, cv2.IMREAD_COLOR)
        if photo is None:
            raise UsageError(f"--source-face {path}: not a readable image")
        once = FaceProcessor(
            self.engine,
            Decoder(self.bundle.layout),
            detector=self.processor.detector,
            filter_factory=None,
            max_faces=1,
            device=self.args.device,
        )
        result = once.process(Frame(photo, 0, 0.0))
        if not result.reconstructions:
            why = result.status + (f" ({once.last_error})" if once.last_error else "")
            raise UsageError(
                f"--source-face {path}: {why}; use a clear photo of one face looking at the camera"
            )
        renderer.add_effect(FaceSwap(self.bundle.layout, photo, result.reconstructions[0]))

    def _make_renderer(self, effect: str, window, read: bool) -> RenderStage:
        from realtime.render.context import create_context
        from realtime.render.renderer import Renderer

        if window is None:
            self.render_ctx = create_context()  # headless: ours to release
        ctx = window.ctx if window is not None else self.render_ctx
        self.gl = Renderer(self.bundle.layout, self.size[0], self.size[1], ctx)
        if self.args.source_face:
            self._make_swap(self.gl)
        else:
            self.gl.effect(effect)  # an unknown name fails here, before the run
        return RenderStage(self.gl, effect, window, self.view, read)

    def close(self) -> None:
        """GL objects first, while their context lives; the window's context goes with it."""
        if self.gl is not None:
            self.gl.release()
            self.gl = None
        if self.view is not None:
            self.view.close()
        if self.render_ctx is not None:
            self.render_ctx.release()
            self.render_ctx = None


def build_outputs(args: argparse.Namespace, source, stream_notes: list[str]) -> list:
    from realtime.outputs import MjpegStreamOutput, VirtualCamOutput, open_file_output

    outputs = []
    if args.output:
        outputs.append(open_file_output(args.output, fps=source.fps))
    if args.vcam:
        w, h = source.size
        cam = VirtualCamOutput(w, h, source.fps)
        stream_notes.append(f"virtual camera: {cam.device}")
        outputs.append(cam)
    if args.stream is not None:
        stream = MjpegStreamOutput(args.stream)
        stream_notes.append(f"MJPEG stream: {stream.url} (page: http://{stream.host}:{stream.port}/)")
        outputs.append(stream)
    return outputs


def run(args: argparse.Namespace) -> int:
    from realtime.outputs import check_writable
    from realtime.pipeline import Pipeline
    from realtime.profiler import Profiler

    check_flags(args)
    want_window = not args.no_window
    if args.profile:
        check_writable(args.profile)
    source = build_source(args, want_window)
    outputs: list = []
    stages = pipeline = None
    try:
        notes: list[str] = []
        outputs = build_outputs(args, source, notes)
        profiler = Profiler()
        stages = Stages(args, source.size, want_window, profiler.hud_lines, read=bool(outputs))
        for note in notes:
            _say(note)
        if not want_window and not (args.output or args.vcam or args.stream is not None or args.profile):
            _say("headless with no --output, --vcam, --stream or --profile: nothing will be kept")
        pipeline = Pipeline(
            source,
            processor=stages.processor,
            renderer=stages.renderer,
            outputs=outputs,
            window=stages.view,
            profiler=profiler,
            paced=want_window or args.realtime,
            max_frames=args.frames,
            hud=args.hud,
            reconnect_s=args.reconnect,
            notify=_say,
        )
        signal.signal(signal.SIGTERM, lambda *_: pipeline.stop())
        result = pipeline.run()
    finally:
        for out in outputs:
            out.close()
        if stages is not None:
            stages.close()
        if pipeline is None:  # else the pipeline closed it, once its capture thread was done
            source.close()

    lat = profiler.summary()["latency_ms"]
    _say(
        f"{result.frames_out} frames in {result.elapsed_s:.1f} s ({result.fps:.1f} fps), "
        f"latency p50 {lat['p50']:.1f} ms p95 {lat['p95']:.1f} ms, dropped {result.dropped}"
        + ("" if result.reason in ("end of input", "frames") else f"; stopped: {result.reason}")
    )
    if args.output:
        _say(f"wrote {args.output}")
    if args.profile:
        meta = {
            "source": source.name,
            "size": list(source.size),
            "source_fps": source.fps,
            "paced": pipeline.live,
            "processor": type(stages.processor).__name__ if stages.processor else None,
            "renderer": bool(stages.renderer),
            "backend": args.backend,
            "mirror": args.mirror,
            "device": args.device,
            "reason": result.reason,
            "error": result.error,
        }
        paths = profiler.write(args.profile, meta)
        trace, chart = paths["trace"].name, paths["chart"].name
        _say(f"wrote {paths['summary']}, {trace} (open it in ui.perfetto.dev), {chart}")
    if result.error:
        _say(result.error)
        return EXIT_INPUT_ENDED_EARLY
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:  # Ctrl-C while loading: nothing to flush yet
        _say("interrupted")
        return 130
    except Exception as e:
        if not is_user_error(e):
            raise  # a bug: the traceback is what a developer needs
        _say(f"error: {e}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
