"""Crop registration: a still face's crop follows the face's own pixels between
reframes, so a face moved by sub-pixel amounts gives steady landmarks; a crop that no
longer looks like its reference, or a face that moved further, is not moved."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.bench.peers.measures import jitter, still_frames
from realtime.core.types import Frame
from realtime.live.faces import FaceProcessor
from realtime.live.register import CropRegistration


@pytest.fixture(scope="module")
def still():
    """The peers benchmark's still face: the astronaut moved by uniform +-0.5 px."""
    return still_frames()


@pytest.fixture(scope="module")
def processor(bundle):
    return FaceProcessor.from_bundle(bundle, "eager", "cpu")


@pytest.fixture(scope="module")
def framing(processor, still) -> tuple[np.ndarray, np.ndarray]:
    """(centre (1, 2), side (1,)): how the tracker frames the still face."""
    with processor.fresh(registration_factory=None) as proc:
        assert proc.process(Frame(still[0][0], 0, 0.0)).reconstructions
        t = proc.tracker.tracks[0]
        return t.center[None].astype(np.float64), np.array([t.size])


def _referenced(still, framing) -> CropRegistration:
    """A registration whose track 1 has the still face's first frame for reference."""
    reg = CropRegistration()
    assert reg(still[0][0], *framing, [1]) is None  # the first: nothing to follow yet
    return reg


def test_registration_follows_subpixel_moves(still, framing):
    frames, shifts = still
    reg, center = _referenced(still, framing), framing[0]
    errs = []
    for f, s in zip(frames[1:10], shifts[1:10], strict=True):
        moved = reg(f, *framing, [1])
        assert moved is not None
        errs.append(moved[0] - center[0] - (s - shifts[0]))
    err = np.abs(errs).max()
    assert err < 0.1, f"registration off by up to {err:.3f} px"


def test_a_crop_unlike_its_reference_is_not_moved(still, framing, media):
    reg = _referenced(still, framing)
    other = cv2.resize(cv2.imread(str(media / "obama_portrait.jpg")), still[0][0].shape[1::-1])
    assert reg(other, *framing, [1]) is None


def test_a_face_that_moved_further_is_left_to_the_network(still, framing):
    """Beyond a still head's tremor (1.5 crop px) the crop stays where the tracker holds it."""
    reg, first = _referenced(still, framing), still[0][0]
    moved = np.float32([[1, 0, 4], [0, 1, 0]])
    frame = cv2.warpAffine(first, moved, first.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    assert reg(frame, *framing, [1]) is None


def test_a_reframed_track_starts_a_new_reference(still, framing):
    reg = _referenced(still, framing)
    far = framing[0] + 4.0  # the tracker moved the crop (landmarks beyond its hold)
    assert reg(still[0][1], far, framing[1], [1]) is None


def test_registered_crops_steady_a_still_face(processor, still):
    """Raw landmarks (before smoothing) on the still face, the known shifts taken out:
    the network alone jitters about 0.5 px a frame (it does not follow sub-pixel
    moves); with the crop following the face, less than half that."""
    frames, shifts = still

    def run(**parts) -> float:
        with processor.fresh(**parts) as proc:
            faces = []
            for i, f in enumerate(frames):
                res = proc.process(Frame(f, i, i / 30))
                faces.append([r.landmarks[:, :2] for r in res.raw])
        return jitter(faces, shifts)["px"]

    plain, registered = run(registration_factory=None), run()
    assert registered <= 0.5 * plain, f"registered {registered:.3f} px against {plain:.3f} px"
