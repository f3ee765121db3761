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
from realtime.live.faces import FaceProcessor
from realtime.live.occlusion import VisibilityModel
from realtime.live.pipeline import Output, Pipeline
from realtime.live.profiler import Profiler
from realtime.live.smooth import OneEuroConfig
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
    status: the last frame's face line ("1 face", "no face", ...). source: the input's
        name; source_fps: its frame rate.
    faces: the faces in view, left to right: {"track": id, "box": [x0, y0, x1, y1] frame
        pixels, "source": the swap source's name, or None (its live self)}.
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

    processor: the run's FaceProcessor (engine, visibility, smoothing state).
    stage: the RenderStage, or None where the run draws nothing.
    pipeline: for the outputs and the HUD on them. profiler: the live figures.
    smoothing: the One Euro settings the processor's filters read.
    make_swap: (photo, reconstruction) -> the swap Effect for that source face.
    load_visibility: builds the occlusion network on first use.
    hud: whether the HUD starts on (a window shows it by default).
    """

    def __init__(
        self,
        processor: FaceProcessor,
        stage: RenderStage | None,
        pipeline: Pipeline,
        profiler: Profiler,
        smoothing: OneEuroConfig,
        layout: UVLayout,
        make_swap: Callable[[np.ndarray, object], Effect],
        load_visibility: Callable[[], VisibilityModel],
        source: tuple[str, float] = ("", 30.0),
        hud: bool = False,
    ):
        self.processor, self.stage, self.pipeline = processor, stage, pipeline
        self.profiler, self.smoothing_config, self.layout = profiler, smoothing, layout
        self._make_swap, self._load_visibility = make_swap, load_visibility
        self._source = source
        self._hud = hud
        self._visibility: VisibilityModel | None = None
        self._lock = threading.Lock()  # one settings change at a time

    # -- reading ---------------------------------------------------------------------
    @property
    def effect(self) -> str:
        return self.stage.effect if self.stage is not None else "none"

    @property
    def effects(self) -> list[str]:
        return self.stage.effects if self.stage is not None else ["none"]

    @property
    def mirror(self) -> bool:
        return bool(self.processor.engine.mirror)

    @property
    def smoothing(self) -> float:
        return self.smoothing_config.strength

    @property
    def occlusion(self) -> bool | None:
        """Whether what covers a face stays in front of effects; None where this run
        draws nothing over faces."""
        return None if self.stage is None else self.processor.visibility is not None

    @property
    def hud(self) -> bool:
        return self._hud

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
            source=self._source[0],
            source_fps=self._source[1],
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
    def _drawing(self) -> RenderStage:
        if self.stage is None:
            raise UsageError(NOTHING_DRAWN)
        return self.stage

    def set_effect(self, name: str) -> None:
        """Switch the effect; EffectError (one line) if unknown."""
        self._drawing().set_effect(name)

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
        """The run's Effect object called ``name`` (the panel draws thumbnails with a
        private copy)."""
        return self._drawing().renderer.effect(name)

    def reconstruct(self, photo: np.ndarray, what: str = "photo"):
        """The largest face of a still photo, as the run's processor sees it; UserError
        (one line naming ``what``) when there is no usable face."""
        return self.processor.reconstruct_photo(photo, what)

    def faces(self) -> list[dict]:
        """The faces in view (see ControlState.faces)."""
        if self.stage is None:
            return []
        face_map = self._face_map()
        mapping = face_map.mapping() if face_map is not None else {}
        return [
            {"track": t, "box": box, "source": mapping.get(t)}
            for t, box in sorted(self.stage.boxes.items(), key=lambda kv: kv[1][0])
        ]

    def _face_map(self) -> FaceMap | None:
        effect = self.stage.renderer.named.get("swap") if self.stage is not None else None
        return effect if isinstance(effect, FaceMap) else None

    def set_source_face(self, photo: np.ndarray, track: int | None = None, what: str = "source face") -> None:
        """Swap the face in ``photo`` (BGR uint8) onto face ``track`` (a track id from
        ``faces()``), or with None onto every face; and switch to the swap. UserError
        (one line naming ``what``) when the photo holds no face or several."""
        stage = self._drawing()
        effect = self._make_swap(photo, self.processor.reconstruct_photo(photo, what, alone=True))
        face_map = self._face_map()
        if track is None or face_map is None:
            face_map = FaceMap([effect], [what], rest="first") if track is None else FaceMap([], rest="none")
        if track is not None:
            face_map.pin(track, effect, what)
        stage.add_effect(face_map)

    def set_live_face(self, track: int) -> None:
        """Face ``track`` back to its live self (no swap) while its track lives."""
        face_map = self._face_map()
        if face_map is None:
            face_map = FaceMap([], rest="none")
            self._drawing().add_effect(face_map, select=False)
        face_map.pin(track, None)

    # -- the face processor ----------------------------------------------------------
    def set_mirror(self, on: bool) -> None:
        """Mirror averaging on or off."""
        self.processor.engine.mirror = bool(on)

    def set_smoothing(self, strength: float) -> None:
        """0 turns smoothing off; 0.5 is the default One Euro filter; 1 the steadiest."""
        self.smoothing_config.strength = strength

    def set_occlusion(self, on: bool) -> None:
        """Occlusion-aware effects on or off (the network loads on first use)."""
        with self._lock:
            if on and self._visibility is None:
                self._visibility = self._load_visibility()
            self.processor.visibility = self._visibility if on else None

    # -- what is shown -----------------------------------------------------------------
    def set_hud(self, on: bool) -> None:
        """The figures drawn on the window and on every output."""
        self._hud = bool(on)
        self.pipeline.hud = self._hud

    def add_output(self, output: Output) -> None:
        """Start writing to ``output`` (a file, a stream, a recording)."""
        self.pipeline.add_output(output)

    def remove_output(self, output: Output) -> None:
        """Stop writing to ``output`` (the caller closes it)."""
        self.pipeline.remove_output(output)
