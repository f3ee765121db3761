"""Our face processing as a benchmark peer: the FaceProcessor as the live pipeline
runs it, returning the raw landmarks (before smoothing)."""

from __future__ import annotations

import numpy as np


class OursPeer:
    """Our FaceProcessor as the live pipeline runs it (MTCNN, tracker, a shipped model
    (``model``: realtime.core.paths.MODELS, or auto) on the engine ``auto`` picks here,
    decode, One Euro), returning the raw landmarks (before smoothing)."""

    name = "ours"

    def __init__(self, backend: str = "auto", threads: int | None = None, model: str = "auto") -> None:
        import torch

        from realtime.core.weights import load_bundle, model_bundle
        from realtime.live.engines import settle_threads
        from realtime.live.faces import FaceProcessor

        if threads:
            torch.set_num_threads(threads)  # before the engine: onnxruntime takes torch's count
        bundle = load_bundle(model_bundle(model))
        self.backend = backend
        self.base = FaceProcessor.from_bundle(bundle, backend, "cpu")
        self.engine = self.base.engine
        if not threads:
            settle_threads(self.engine, "cpu")  # as the app runs it
        assert bundle.path is not None  # load_bundle reads a file
        self.bundle_name = bundle.path.name
        self.video = True
        self.proc = None
        self.seq = 0

    def versions(self) -> dict[str, str]:
        import onnxruntime
        import torch

        return {
            "weights": self.bundle_name,
            "engine": self.engine.name,
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
            "torch_threads": str(torch.get_num_threads()),
        }

    def _processor(self, max_faces: int, smooth: bool):
        from realtime.live.smooth import OneEuroFilter

        return self.base.fresh(filter_factory=OneEuroFilter if smooth else None, max_faces=max_faces)

    def open(self, video: bool) -> None:
        self.video, self.seq = video, 0
        self.proc = self._processor(1, smooth=True) if video else None

    def __call__(self, bgr: np.ndarray, rect: list[float] | None = None) -> list[np.ndarray]:
        """Raw (68, 2) landmarks per face; ``rect`` is ignored (the protocol's GT-box
        crop is run in the parent, by realtime.eval.landmarks)."""
        from realtime.core.types import Frame

        proc = self.proc if self.video else self._processor(4, smooth=False)
        assert proc is not None, "open() first"
        res = proc.process(Frame(bgr, self.seq, self.seq / 30.0))
        self.seq += 1
        return [r.landmarks[:, :2].astype(np.float64) for r in res.raw]
