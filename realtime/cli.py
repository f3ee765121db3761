"""The command: ``python run_live.py`` and ``prnet-live`` both run ``command``. The
flags come first; then the App (realtime.app) checks what they mean together
(``Options.validate``, before anything slow is built) and builds the run, a control
panel (realtime.panel) steers it through its Controls when asked for, and the exit
status says how it went."""

from __future__ import annotations

import argparse
import os
import sys

from realtime.core.messages import say
from realtime.core.types import UserError  # importing realtime also quiets FFmpeg/OpenCV logs

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The command's flags, in four groups; every flag has its help (``--help``)."""
    p = argparse.ArgumentParser(
        prog="prnet-live",
        description="Real-time PRNet 3D face reconstruction and AR effects. With no --camera or "
        "--input it runs the demo source (a face photo moving like a head), so it works with no "
        "camera and no files.",
        epilog="Keys in the window: H toggles the profiler HUD, E cycles effects, Q or Esc quits. "
        "Exit status: 0 done; 1 input ended early (damaged video, camera lost), outputs still "
        "written; 2 bad input or flags.",
    )
    p.add_argument(
        "--version",
        action="store_true",
        help="print the version, the weights' checksum and the engine --backend auto would run, and exit",
    )
    _input_flags(p.add_argument_group("input (pick one)"))
    _output_flags(p.add_argument_group("output"))
    _effect_flags(p.add_argument_group("effects"))
    _model_flags(p.add_argument_group("model and engine"))
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _input_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--camera", metavar="N", help="webcam index (0, 1, ...) or device path (/dev/video2)")
    g.add_argument("--input", metavar="PATH", help="a video file, an image, or a folder of images")
    g.add_argument("--demo", action="store_true", help="built-in demo: a face photo moved along a head path")
    g.add_argument(
        "--size",
        metavar="WxH",
        default=None,
        help="resolution to ask the camera for (default 1280x720, MJPG) or of demo frames (default 640x480)",
    )


def _output_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--output", metavar="PATH", help="write a video (.mp4 .avi .mkv .mov) or, for stills, a .png/.jpg"
    )
    g.add_argument(
        "--no-window", action="store_true", help="run headless: no window (files, vcam, stream only)"
    )
    g.add_argument("--vcam", action="store_true", help="send frames to a virtual camera (v4l2loopback / OBS)")
    g.add_argument(
        "--stream", metavar="PORT", type=int, help="serve an MJPEG stream on http://127.0.0.1:PORT/"
    )
    g.add_argument(
        "--panel",
        metavar="PORT",
        type=int,
        nargs="?",
        const=8090,
        help="serve a control page on http://127.0.0.1:PORT/ (default 8090): effects, source face, "
        "toggles, live figures, snapshot and recording (pip install 'prnet-live[panel]')",
    )
    g.add_argument(
        "--panel-host",
        metavar="HOST",
        default="127.0.0.1",
        help="address the panel listens on (default 127.0.0.1); any other (0.0.0.0: every network) "
        "needs the random token printed in the URL at start",
    )
    g.add_argument(
        "--profile", metavar="PATH", help="write timings: PATH.json summary, .trace.json, .png chart"
    )
    g.add_argument("--hud", action="store_true", help="draw live fps/latency figures on the frames")
    g.add_argument(
        "--realtime",
        action="store_true",
        help="pace files and the demo at their fps even without a window, dropping frames a slow stage "
        "cannot keep up with, as with a live camera (default headless: every frame, as fast as possible)",
    )
    g.add_argument(
        "--reconnect",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="how long to retry a camera that stops sending frames (default 10)",
    )
    g.add_argument(
        "--frames", metavar="N", type=int, help="stop after N output frames (default: end of input)"
    )


def _effect_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--effect",
        metavar="NAME",
        help="effect to render: none, paint, tiger, metal, grid, landmarks, "
        "wireframe, pose, depth, mask:PATH.png (default none; swap with --source-face)",
    )
    g.add_argument(
        "--source-face",
        metavar="PATH",
        action="append",
        help="photo of a face to swap onto a live face; give it again for more people: faces take the "
        "photos left to right, in the order they are first found, and keep theirs while they stay in view",
    )
    g.add_argument(
        "--source-face-rest",
        choices=("first", "none"),
        default=None,
        help="faces beyond the --source-face photos: swapped with the first photo, or left as they are "
        "(default: first with one photo, none with several)",
    )
    g.add_argument(
        "--swap-shape",
        metavar="S",
        type=float,
        default=None,
        help="move the live face's mesh, and the frame around it, toward the source's face shape "
        "(jaw, nose, cheeks) by S: 0 keeps the live geometry, 1 takes the source's shape (default 1)",
    )
    g.add_argument(
        "--swap-tone",
        choices=("live", "source"),
        default="live",
        help="skin tone of the swapped face: live matches the live face's (fits the neck and ears; "
        "default), source keeps the source's",
    )


def _model_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--faces",
        metavar="N",
        type=int,
        default=4,
        help="most faces reconstructed per frame; more are counted (default 4)",
    )
    g.add_argument(
        "--model",
        metavar="NAME",
        default="auto",
        help="shipped model: lite, mobile (faster, less accurate: see the model card) or auto, "
        "the most accurate shipped (default auto)",
    )
    g.add_argument("--weights", metavar="PATH", help="a weights bundle of your own, instead of --model")
    g.add_argument(
        "--backend",
        metavar="NAME",
        default="auto",
        help="inference engine: auto picks the fastest available (default auto)",
    )
    g.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each face's reconstruction with its mirror image's: more accurate "
        "and steadier, for twice the inference (default: on with a CUDA --device, off on "
        "a CPU, where the second pass costs latency)",
    )
    g.add_argument(
        "--occlusion",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep what covers a face (a hand, hair, glasses, a microphone) in front of masks "
        "and swaps, with a small visibility network on each face crop (default on)",
    )
    g.add_argument(
        "--device",
        metavar="NAME",
        default="auto",
        help="torch device for inference: auto, cpu, cuda, cuda:1 (default auto: cuda when torch sees "
        "a GPU, else cpu)",
    )
    g.add_argument(
        "--retime",
        action="store_true",
        help="with --backend auto: time the engines again instead of using the choice remembered for "
        "this machine and model",
    )


def version_text(weights: str | None = None, device: str = "auto", model: str = "auto") -> str:
    """What ``--version`` prints: the package version, the weights bundle and its
    checksum, and the engine ``--backend auto`` would run (nothing is built)."""
    from importlib.metadata import PackageNotFoundError, version

    from realtime.core.weights import describe, resolve_bundle
    from realtime.live.engines import resolve_device
    from realtime.live.engines.choose import auto_choice

    try:
        package = version("prnet-live")
    except PackageNotFoundError:
        package = "unknown (not installed)"
    bundle = resolve_bundle(weights, model)
    device = resolve_device(device)
    name = bundle.path.name if bundle.path is not None else "?"
    return "\n".join(
        [
            f"prnet-live {package}",
            f"weights: {name} ({describe(bundle.config)}, {bundle.config.resolution} px), "
            f"sha256 {bundle.sha256[:16]}",
            f"engine (--backend auto on {device}): {auto_choice(bundle, device)}",
        ]
    )


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
    args = parse_args(argv)
    try:
        if args.version:
            print(version_text(args.weights, args.device, args.model))
            return 0
        from realtime.app import App, Options

        app = App(Options.from_args(args), notify=say)  # checks the options first
        if args.panel is not None:
            from realtime.panel import Panel

            try:
                panel = Panel(app.controls, args.panel, args.panel_host, notify=say)
            except BaseException:
                app.close()
                raise
            app.attach(panel)
            say(f"control panel: {panel.url}")
        return app.main()
    except KeyboardInterrupt:  # Ctrl-C while loading: nothing to flush yet
        say("interrupted")
        return 130
    except Exception as e:
        if not isinstance(e, UserError):
            raise  # a bug: the traceback is what a developer needs
        say(f"error: {e}")
        return EXIT_USAGE
