"""The one control surface of a live run: what a user can change while it runs.

``App`` builds the parts; ``Controls`` steers them. The control panel, the window's
keys and library users change a run only through these methods, from any thread, and
read it back as one ``ControlState``; none of them reaches into the parts. Every
change shows from the next frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from realtime.core.types import UsageError
from realtime.core.uv import UVLayout
from realtime.live.capture import Source, demo_face
from realtime.live.faces import FaceProcessor
from realtime.live.pipeline import Output, Outputs
from realtime.live.profiler import Profiler
from realtime.live.smooth import OneEuroConfig
from realtime.outputs.hud import Hud
from realtime.render.effects import Effect
from realtime.render.effects.facemap import FaceMap
from realtime.render.stage import RenderStage

NOTHING_DRAWN = "this run draws nothing (effect none, no window): start it with an --effect"


@dataclass(frozen=True)
class ControlState:
    """A run's settings and live figures at one moment (what the panel shows).

    effect: the effect drawn; effects: the names that can be picked, in the keys' order.
    mirror: mirror averaging on. smoothing: 0 (off) .. 1 (steadiest), 0.5 the default.
    occlusion: what covers a face stays in front of effects; None where nothing is
        drawn over faces. hud: figures drawn on the picture.
    status: the last frame's face line ("1 face", "no face", ...). source: the capture
        input's name; source_fps: its frame rate.
    faces: the faces in view, left to right: {"track": id, "box": [x0, y0, x1, y1] frame
        pixels, "source_face": the name of the photo swapped onto it, or None (its live
        self)}.
    figures: fps, latency_p50 / latency_p95 (ms), dropped (frames), stages (name ->
        p50 / p95 ms), over the last seconds.
    """

    effect: str
    effects: list[str]
    mirror: bool
    smoothing: float
    occlusion: bool | None
    hud: bool
    status: str
    source: str
    source_fps: float
    figures: dict = field(default_factory=dict)
    faces: list[dict] = field(default_factory=list)


class Controls:
    """Thread-safe steering of one run (see the module docstring).

    processor: the run's FaceProcessor (mirror averaging, occlusion).
    stage: the RenderStage (the effects), or None where the run draws nothing.
    outputs: the run's outputs, which recordings join and leave.
    hud: the figures drawn on the picture (its one switch).
    profiler: the live figures. smoothing: the One Euro settings the processor's
        filters read. layout: the UV layout (the panel's thumbnails draw with it).
    make_swap: (photo, name) -> the swap Effect for the face in that photo.
    source: the capture input (its name and frame rate, for ``state()``).
    """

    def __init__(
        self,
        processor: FaceProcessor,
        stage: RenderStage | None,
        outputs: Outputs,
        hud: Hud,
        profiler: Profiler,
        smoothing: OneEuroConfig,
        layout: UVLayout,
        make_swap: Callable[[np.ndarray, str], Effect],
        source: Source,
    ):
        self.processor, self.stage, self.outputs, self._hud = processor, stage, outputs, hud
        self.profiler, self.smoothing_config, self.layout = profiler, smoothing, layout
        self._make_swap, self.source = make_swap, source
        self._lock = threading.Lock()  # one settings change at a time
        self._sync_frame_visibility()

    # -- reading ---------------------------------------------------------------------
    @property
    def effect(self) -> str:
        return self.stage.effect if self.stage is not None else "none"

    @property
    def effects(self) -> list[str]:
        return self.stage.effects if self.stage is not None else ["none"]

    @property
    def mirror(self) -> bool:
        return self.processor.mirror

    @property
    def smoothing(self) -> float:
        return self.smoothing_config.strength

    @property
    def occlusion(self) -> bool | None:
        """Whether what covers a face stays in front of effects; None where this run
        draws nothing over faces."""
        return None if self.stage is None else self.processor.occlusion

    @property
    def hud(self) -> bool:
        return self._hud.on

    @property
    def status(self) -> str:
        return self.stage.status if self.stage is not None else ""

    def state(self) -> ControlState:
        s = self.profiler.rolling()
        stages = {k: {"p50": v["p50"], "p95": v["p95"]} for k, v in s["stages"].items()}
        return ControlState(
            effect=self.effect,
            effects=self.effects,
            mirror=self.mirror,
            smoothing=self.smoothing,
            occlusion=self.occlusion,
            hud=self.hud,
            status=self.status,
            source=self.source.name,
            source_fps=self.source.fps,
            faces=self.faces(),
            figures={
                "fps": s["fps"],
                "latency_p50": s["latency_ms"]["p50"],
                "latency_p95": s["latency_ms"]["p95"],
                "dropped": self.profiler.dropped,
                "stages": stages,
            },
        )

    # -- effects -----------------------------------------------------------------------
    def _stage(self) -> RenderStage:
        """The render stage, or UsageError where this run draws nothing."""
        if self.stage is None:
            raise UsageError(NOTHING_DRAWN)
        return self.stage

    def _sync_frame_visibility(self) -> None:
        """Frames get visibility maps only while the effect paints the face's surface."""
        self.processor.set_frame_visibility(self.stage is not None and self.stage.draws_surfaces)

    def set_effect(self, name: str) -> None:
        """Switch the effect; EffectError (one line) if unknown."""
        self._stage().set_effect(name)
        self._sync_frame_visibility()

    def step_effect(self, step: int) -> None:
        """The next (``step`` 1) or previous (-1) effect in the keys' order."""
        names = self.effects
        i = names.index(self.effect) if self.effect in names else 0
        self.set_effect(names[(i + step) % len(names)])

    def pick_effect(self, index: int) -> None:
        """The effect at ``index`` of ``effects`` (the window's number keys); none past the end."""
        names = self.effects
        if 0 <= index < len(names):
            self.set_effect(names[index])

    def effect_for(self, name: str) -> Effect:
        """The run's Effect object called ``name`` (the panel draws thumbnails with its
        ``preview_copy()``)."""
        return self._stage().effect_for(name)

    def preview_face(self, size: int) -> np.ndarray:
        """A square photo of a face, ``size`` pixels (the demo's), to draw previews of
        the effects on (the panel's effect buttons)."""
        return demo_face(size)

    def reconstruct(self, photo: np.ndarray, name: str = "photo"):
        """The largest face of a still photo, as the run's processor sees it; UserError
        (one line naming ``name``) when there is no usable face."""
        return self.processor.reconstruct_photo(photo, name)

    def faces(self) -> list[dict]:
        """The faces in view (see ControlState.faces)."""
        if self.stage is None:
            return []
        face_map = self._face_map()
        mapping = face_map.mapping() if face_map is not None else {}
        return [
            {"track": t, "box": box, "source_face": mapping.get(t)}
            for t, box in sorted(self.stage.boxes.items(), key=lambda kv: kv[1][0])
        ]

    def _face_map(self) -> FaceMap | None:
        effect = self.stage.named.get(FaceMap.name) if self.stage is not None else None
        return effect if isinstance(effect, FaceMap) else None

    def set_source_faces(self, photos: list[tuple[np.ndarray, str]], rest: str | None = None) -> None:
        """Swap the faces in ``photos`` ((BGR uint8 image, name) pairs) onto the faces in
        view: faces take them left to right, in the order they are first found, and keep
        theirs while they stay in view; faces beyond them get the first (``rest``
        "first", the default with one photo) or stay themselves ("none", the default
        with several). Switches to the swap. UserError (one line naming the photo) when
        a photo holds no face or several."""
        stage = self._stage()
        swaps = [self._make_swap(photo, name) for photo, name in photos]
        rest = rest or ("first" if len(photos) == 1 else "none")
        stage.add_effect(FaceMap(swaps, [name for _, name in photos], rest=rest))
        self._sync_frame_visibility()

    def set_source_face(self, photo: np.ndarray, track: int | None = None, name: str = "source face") -> None:
        """Swap the face in ``photo`` (BGR uint8) onto face ``track`` (a track id from
        ``faces()``), or with None onto every face; and switch to the swap. UserError
        (one line) when ``track`` is not in view, or the photo holds no face or several."""
        if track is None:
            self.set_source_faces([(photo, name)])
            return
        stage = self._stage()
        in_view = sorted(stage.boxes)
        if track not in in_view:
            seen = ", ".join(f"#{t}" for t in in_view) if in_view else "none"
            raise UsageError(f"no face #{track} in view (faces in view: {seen}): pick one of their numbers")
        swap = self._make_swap(photo, name)
        face_map = self._face_map() or FaceMap([], rest="none")
        face_map.pin(track, swap, name)
        stage.add_effect(face_map)
        self._sync_frame_visibility()

    def set_live_face(self, track: int) -> None:
        """Face ``track`` back to its live self (no swap) while its track lives."""
        face_map = self._face_map()
        if face_map is None:
            face_map = FaceMap([], rest="none")
            self._stage().add_effect(face_map, select=False)
        face_map.pin(track, None)

    # -- the face processor ----------------------------------------------------------
    def set_mirror(self, on: bool) -> None:
        """Mirror averaging on or off."""
        self.processor.set_mirror(on)

    def set_smoothing(self, strength: float) -> None:
        """0 turns smoothing off; 0.5 is the default One Euro filter; 1 the steadiest."""
        self.smoothing_config.strength = strength

    def set_occlusion(self, on: bool) -> None:
        """Occlusion-aware effects on or off (the network loads on first use)."""
        with self._lock:
            self.processor.set_occlusion(on)

    # -- what is shown -----------------------------------------------------------------
    def set_hud(self, on: bool) -> None:
        """The figures drawn on the picture: the window's and every output's."""
        self._hud.set(on)

    def add_output(self, output: Output) -> None:
        """Start writing to ``output`` (a file, a stream, a recording)."""
        self.outputs.add(output)

    def remove_output(self, output: Output) -> None:
        """Stop writing to ``output`` (the caller closes it)."""
        self.outputs.remove(output)
