"""Who a face is, as a recogniser sees it: dlib's face-recognition ResNet (the ``eval``
extra). Distances between embeddings under 0.6 usually mean "the same person"."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from realtime.core.types import UserError

SAME_PERSON = 0.6  # dlib's threshold


class IdentityUnavailable(UserError, RuntimeError):
    """dlib or its models are missing; one line saying what to install."""


class Identity:
    """dlib's face-recognition ResNet: 128-d embeddings of a face, located by dlib's
    HOG detector and aligned by its 68-point predictor (both from the
    face-recognition-models package's files, found without importing it: it imports
    pkg_resources, which new setuptools lacks)."""

    def __init__(self):
        hint = "pip install -e '.[eval]' (dlib-bin and face-recognition-models)"
        try:
            import dlib
        except ImportError:
            raise IdentityUnavailable(f"identity needs dlib: {hint}") from None
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise IdentityUnavailable(f"identity needs dlib's models: {hint}")
        models = Path(next(iter(spec.submodule_search_locations))) / "models"
        predictor = models / "shape_predictor_68_face_landmarks.dat"
        resnet = models / "dlib_face_recognition_resnet_model_v1.dat"
        if not (predictor.is_file() and resnet.is_file()):
            raise IdentityUnavailable(f"dlib's model files are missing from {models}: {hint}")
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor))
        self.net = dlib.face_recognition_model_v1(str(resnet))

    def box(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face dlib finds, (left, top, right, bottom), or None."""
        dets = self.detector(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 1)
        if not len(dets):
            return None
        d = max(dets, key=lambda r: r.width() * r.height())
        return d.left(), d.top(), d.right(), d.bottom()

    def embed(self, image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
        """The face's embedding, in ``box`` (else where dlib finds it); None if no face."""
        box = box or self.box(image)
        if box is None:
            return None
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        shape = self.predictor(rgb, self.dlib.rectangle(*box))
        return np.array(self.net.compute_face_descriptor(rgb, shape))
