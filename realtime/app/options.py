"""What a run does: ``Options``, the flags of ``prnet-live --help`` under the same
names, and ``Options.validate()``, what they mean together (conflicts, ranges, files),
checked before anything slow is built, so a wrong run stops at once with one line.

The CLI fills Options from its flags; a library user builds them directly; ``App``
validates them either way.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass, fields
from pathlib import Path

from realtime.core.types import UsageError


def parse_size(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """``--size WxH`` as (width, height); ``default`` when not given."""
    if text is None:
        return default
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: write it as WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise UsageError(f"--size {text}: width and height must be between 16 and 8192")
    return w, h


def _port(flag: str, port: int | None) -> None:
    if port is not None and not 0 <= port <= 65535:
        raise UsageError(f"{flag} {port}: a TCP port is 0..65535 (0 picks a free one)")


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
    hud: bool = False  # the figures on the picture (the window's and every output's)
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

    @property
    def source_faces(self) -> list[str]:
        """The --source-face photos, in the order faces take them."""
        given = self.source_face
        return [given] if isinstance(given, str) else list(given or [])

    def validate(self) -> None:
        """UsageError (one line saying what to fix) for options that cannot work:
        conflicts, values out of range, files that are not there."""
        self._check_input()
        self._check_outputs()
        self._check_swap()
        self._check_model()

    def _check_input(self) -> None:
        given = (("--camera", self.camera is not None), ("--input", self.input), ("--demo", self.demo))
        chosen = [flag for flag, on in given if on]
        if len(chosen) > 1:
            raise UsageError(f"{' and '.join(chosen)} conflict: choose one input")
        parse_size(self.size, (640, 480))
        if self.frames is not None and self.frames < 1:
            raise UsageError(f"--frames {self.frames}: must be 1 or more")
        if self.realtime and self.camera is not None:
            raise UsageError("--realtime is for files and the demo: a camera is always real time")

    def _check_outputs(self) -> None:
        _port("--stream", self.stream)
        _port("--panel", self.panel)
        if self.panel and self.panel == self.stream:
            raise UsageError(
                f"--panel and --stream both ask for port {self.panel}: give them different ports"
            )
        if self.panel is None and self.panel_host != "127.0.0.1":
            raise UsageError("--panel-host is where the control page listens: add --panel [PORT]")
        if self.panel is not None and importlib.util.find_spec("PIL") is None:
            raise UsageError("--panel needs pillow: pip install 'prnet-live[panel]'")
        if self.profile and not self.profile.endswith(".json"):
            raise UsageError(f"--profile {self.profile}: give a .json path, e.g. out/profile.json")
        if self.output and self.input and Path(self.output).resolve() == Path(self.input).resolve():
            raise UsageError("--output is the --input file: it would be overwritten; choose another path")

    def _check_swap(self) -> None:
        photos = self.source_faces
        if photos and self.effect not in (None, "swap"):
            raise UsageError(
                f"--source-face swaps faces, --effect {self.effect} is another effect: use one of the two"
            )
        if self.effect == "swap" and not photos:
            raise UsageError("--effect swap needs --source-face PHOTO (the face to put on)")
        if self.swap_shape is not None and not 0.0 <= self.swap_shape <= 1.0:
            raise UsageError(
                f"--swap-shape {self.swap_shape:g}: use a value from 0 (live shape) to 1 (source's shape)"
            )
        if self.swap_shape is not None and not photos:
            raise UsageError("--swap-shape shapes a face swap: add --source-face PHOTO")
        if self.swap_tone != "live" and not photos:
            raise UsageError("--swap-tone tones a face swap: add --source-face PHOTO")
        for path in photos:
            if not Path(path).is_file():
                raise UsageError(f"--source-face {path}: no such file")
        if len(set(photos)) < len(photos):
            raise UsageError("the same --source-face photo is given twice: give each person's photo once")
        if self.source_face_rest and not photos:
            raise UsageError(
                "--source-face-rest says what faces beyond the --source-face photos get: add them"
            )

    def _check_model(self) -> None:
        if self.faces < 1:
            raise UsageError(f"--faces {self.faces}: must be 1 or more")
        from realtime.core.weights import check_choice

        check_choice(self.weights, self.model)  # BundleError: one line, exit 2 as a UsageError
        if self.device != "auto":
            import torch

            try:
                device = torch.device(self.device)
            except RuntimeError:
                raise UsageError(
                    f"--device {self.device}: not a torch device (auto, cpu, cuda, cuda:1)"
                ) from None
            if device.type == "cuda" and not torch.cuda.is_available():
                raise UsageError(
                    f"--device {self.device}: torch sees no CUDA GPU (see README, GPU install); "
                    "use --device cpu"
                )
