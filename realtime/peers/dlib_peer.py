"""dlib's HOG face detector and 68-point shape predictor as a benchmark peer."""

from __future__ import annotations

import cv2
import numpy as np

from realtime.peers.workers import PeerError, dlib_model

DLIB_UPSAMPLE = 0  # the frames' faces are large: no upsampling (1 would cost ~4x)


class DlibPeer:
    """dlib's HOG frontal face detector and its 68-point shape predictor (iBUG 300-W),
    each frame detected afresh (dlib has no tracker); in video mode the face the detector
    is surest of."""

    name = "dlib"

    def __init__(self) -> None:
        import dlib

        path, why = dlib_model()
        if path is None:
            raise PeerError(why)
        self.dlib = dlib
        # dlib's names come from its compiled module, which pyright cannot read
        self.detector = dlib.get_frontal_face_detector()  # pyright: ignore[reportAttributeAccessIssue]
        self.predictor = dlib.shape_predictor(str(path))  # pyright: ignore[reportAttributeAccessIssue]
        self.video = True

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"dlib": self.dlib.__version__, "face-recognition-models": version("face-recognition-models")}

    def open(self, video: bool) -> None:
        self.video = video

    def __call__(self, bgr: np.ndarray, rect: list[float] | None = None) -> list[np.ndarray]:
        """(68, 2) per face, dlib's integer pixel positions; ``rect`` [l, t, r, b]
        replaces the detector."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if rect is not None:
            rects = [self.dlib.rectangle(*(int(round(v)) for v in rect))]  # pyright: ignore[reportAttributeAccessIssue]
        else:
            found, scores, _ = self.detector.run(rgb, DLIB_UPSAMPLE, 0.0)
            rects = [r for _, r in sorted(zip(scores, found, strict=True), key=lambda x: -x[0])]
            if self.video:
                rects = rects[:1]  # the surest face (a weak false one turns up beside the astronaut)
        out = []
        for r in rects:
            shape = self.predictor(rgb, r)
            out.append(np.array([(p.x, p.y) for p in shape.parts()], np.float64))
        return out


# ------------------------------------------------------------------ the parent's side
