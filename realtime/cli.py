"""The command: ``python run_live.py`` and ``prnet-live`` both run ``command``. The
flags and their checks come first, before anything slow loads; then the App
(realtime.app) builds the run, a control panel (realtime.panel) steers it through
its Controls when asked for, and the exit status says how it went."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from realtime.core.messages import say
from realtime.core.types import UsageError, UserError  # importing realtime also quiets FFmpeg/OpenCV logs

EXIT_USAGE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
        "--panel",
        metavar="PORT",
        type=int,
        nargs="?",
        const=8090,
        help="serve a control page on http://127.0.0.1:PORT/ (default 8090): effects, source face, "
        "toggles, live figures, snapshot and recording (pip install 'prnet-live[panel]')",
    )
    out.add_argument(
        "--panel-host",
        metavar="HOST",
        default="127.0.0.1",
        help="address the panel listens on (default 127.0.0.1); any other (0.0.0.0: every network) "
        "needs the random token printed in the URL at start",
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
    fx.add_argument(
        "--source-face",
        metavar="PATH",
        action="append",
        help="photo of a face to swap onto a live face; give it again for more people: faces take the "
        "photos left to right, in the order they are first found, and keep theirs while they stay in view",
    )
    fx.add_argument(
        "--source-face-rest",
        choices=("first", "none"),
        default=None,
        help="faces beyond the --source-face photos: swapped with the first photo, or left as they are "
        "(default: first with one photo, none with several)",
    )
    fx.add_argument(
        "--swap-shape",
        metavar="S",
        type=float,
        default=None,
        help="move the live face's mesh, and the frame around it, toward the source's face shape "
        "(jaw, nose, cheeks) by S: 0 keeps the live geometry, 1 takes the source's shape (default 1)",
    )
    fx.add_argument(
        "--swap-tone",
        choices=("live", "source"),
        default="live",
        help="skin tone of the swapped face: live matches the live face's (fits the neck and ears; "
        "default), source keeps the source's",
    )
    fx.add_argument(
        "--faces",
        metavar="N",
        type=int,
        default=4,
        help="most faces reconstructed per frame; more are counted (default 4)",
    )
    fx.add_argument(
        "--model",
        metavar="NAME",
        default="auto",
        help="shipped model: lite, mobile (faster, less accurate: see the model card) or auto, "
        "the most accurate shipped (default auto)",
    )
    fx.add_argument("--weights", metavar="PATH", help="a weights bundle of your own, instead of --model")
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
        "--occlusion",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep what covers a face (a hand, hair, glasses, a microphone) in front of masks "
        "and swaps, with a small visibility network on each face crop (default on)",
    )
    fx.add_argument(
        "--device",
        metavar="NAME",
        default="auto",
        help="torch device for inference: auto, cpu, cuda, cuda:1 (default auto: cuda when torch sees "
        "a GPU, else cpu)",
    )
    fx.add_argument(
        "--retime",
        action="store_true",
        help="with --backend auto: time the engines again instead of using the choice remembered for "
        "this machine and model",
    )
    return p.parse_args(argv)


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
    from realtime.core.weights import check_choice

    check_choice(args.weights, args.model)  # BundleError: one line, exit 2 as a UsageError
    if args.stream is not None and not 0 <= args.stream <= 65535:
        raise UsageError(f"--stream {args.stream}: a TCP port is 0..65535 (0 picks a free one)")
    if args.panel is not None and not 0 <= args.panel <= 65535:
        raise UsageError(f"--panel {args.panel}: a TCP port is 0..65535 (0 picks a free one)")
    if args.panel is not None and args.panel and args.panel == args.stream:
        raise UsageError(f"--panel and --stream both ask for port {args.panel}: give them different ports")
    if args.panel is None and args.panel_host != "127.0.0.1":
        raise UsageError("--panel-host is where the control page listens: add --panel [PORT]")
    if args.panel is not None:
        import importlib.util

        if importlib.util.find_spec("PIL") is None:
            raise UsageError("--panel needs pillow: pip install 'prnet-live[panel]'")
    if args.profile and not args.profile.endswith(".json"):
        raise UsageError(f"--profile {args.profile}: give a .json path, e.g. out/profile.json")
    if args.source_face and args.effect not in (None, "swap"):
        raise UsageError(
            f"--source-face swaps faces, --effect {args.effect} is another effect: use one of the two"
        )
    if args.effect == "swap" and not args.source_face:
        raise UsageError("--effect swap needs --source-face PHOTO (the face to put on)")
    if args.swap_shape is not None and not 0.0 <= args.swap_shape <= 1.0:
        raise UsageError(
            f"--swap-shape {args.swap_shape:g}: use a value from 0 (live shape) to 1 (source's shape)"
        )
    if args.swap_shape is not None and not args.source_face:
        raise UsageError("--swap-shape shapes a face swap: add --source-face PHOTO")
    if args.swap_tone != "live" and not args.source_face:
        raise UsageError("--swap-tone tones a face swap: add --source-face PHOTO")
    for path in args.source_face or []:
        if not Path(path).is_file():
            raise UsageError(f"--source-face {path}: no such file")
    if args.source_face and len(set(args.source_face)) < len(args.source_face):
        raise UsageError("the same --source-face photo is given twice: give each person's photo once")
    if args.source_face_rest and not args.source_face:
        raise UsageError("--source-face-rest says what faces beyond the --source-face photos get: add them")
    if args.output and args.input:
        same = Path(args.output).resolve() == Path(args.input).resolve()
        if same:
            raise UsageError("--output is the --input file: it would be overwritten; choose another path")
    if args.realtime and args.camera is not None:
        raise UsageError("--realtime is for files and the demo: a camera is always real time")
    if args.device != "auto":
        import torch

        try:
            device = torch.device(args.device)
        except RuntimeError:
            raise UsageError(
                f"--device {args.device}: not a torch device (auto, cpu, cuda, cuda:1)"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(
                f"--device {args.device}: torch sees no CUDA GPU (see README, GPU install); use --device cpu"
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
        check_flags(args)
        from realtime.app import App, Options

        app = App(Options.from_args(args), notify=say)
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
