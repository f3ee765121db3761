"""The face moves: the shipped model opens the mouth and closes the lids where the photo
does, the labels it is trained on carry them, and the smoothing lets speech through.

The photos are AFLW2000-3D dev faces picked by eye (and by MediaPipe Face Mesh, which
reads them: open mouths 0.6, closed lids under 0.05 of the eye distance)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.landmarks import Expression
from realtime.core.types import Frame
from realtime.live.faces import FaceProcessor

OPEN_MOUTHS = ("image02673", "image01077")  # a shout, a scream: mouths wide open
CLOSED_MOUTHS = ("image00014", "image04128")  # lips together
CLOSED_EYES = ("image01934",)  # asleep: lids shut
OPEN_EYES = ("image00014", "image00792")  # looking into the camera


@pytest.fixture(scope="module")
def faces(bundle):
    return FaceProcessor.from_bundle(bundle, "eager", "cpu")


def _expression(faces, shared, name: str) -> Expression:
    image = cv2.imread(str(shared / "aflw2000" / f"{name}.jpg"))
    assert image is not None, name
    recs = faces.fresh(filter_factory=None, max_faces=1).process(Frame(image, 0, 0.0)).reconstructions
    assert recs, f"{name}: no face found"
    return Expression.from_landmarks(recs[0].landmarks)


def test_an_open_mouth_reads_several_times_wider_than_a_closed_one(faces, shared):
    opened = [float(_expression(faces, shared, n).mouth) for n in OPEN_MOUTHS]
    closed = [float(_expression(faces, shared, n).mouth) for n in CLOSED_MOUTHS]
    assert min(opened) > 3 * max(closed), f"open {opened}, closed {closed} (eye distances)"


def test_a_closed_eye_reads_closed(faces, shared):
    shut = [float(_expression(faces, shared, n).eyes) for n in CLOSED_EYES]
    opened = [float(_expression(faces, shared, n).eyes) for n in OPEN_EYES]
    assert max(shut) < 0.5 * min(opened), f"closed {shut}, open {opened} (lid opening / eye distance)"


def test_the_lid_warp_closes_an_eye_and_leaves_the_brow_and_nose(bfm):
    """Moving the upper lid's control points down onto the lower lid closes the mesh's
    eye; the brow and the nose tip do not move."""
    from realtime.core.landmarks import BROW_L, EYE_L
    from realtime.train.groundtruth import MapMaker, base_affine
    from realtime.train.lidlip import CONTROLS

    maker = MapMaker(bfm, 128)
    params = np.zeros((1, 62), np.float32)
    params[0, :12] = [6e-4, 0, 0, 60, 0, 6e-4, 0, 60, 0, 0, 6e-4, 0]  # a frontal face filling the crop
    kpt = bfm["kpt_ind"]
    plain = maker.vertices(params)[0].numpy()
    lm = plain[kpt, :2]
    offsets = np.zeros((1, len(CONTROLS), 2), np.float32)
    col = {int(k): i for i, k in enumerate(CONTROLS)}
    for up, down in ((37, 41), (38, 40)):  # upper lid onto the lower
        offsets[0, col[up]] = lm[down] - lm[up]
    moved = maker.vertices(params, offsets)[0].numpy()
    e0 = Expression.from_landmarks(plain[kpt][None])
    e1 = Expression.from_landmarks(moved[kpt][None])
    left0 = np.linalg.norm(plain[kpt[37], :2] - plain[kpt[41], :2])
    left1 = np.linalg.norm(moved[kpt[37], :2] - moved[kpt[41], :2])
    assert left0 > 1.0 and left1 < 0.05 * left0, (left0, left1)
    assert e1.eyes[0] < e0.eyes[0]
    for k in [*BROW_L, 30, 33]:
        assert np.abs(moved[kpt[k]] - plain[kpt[k]]).max() < 1e-4, f"landmark {k} moved"
    # the position map made with the offsets holds the closed lid at its landmark pixels
    maps = maker.maps(params, base_affine(128)[None], offsets)[0].numpy()
    (c1, r1), (c2, r2) = maker.layout.kpt_ind[:, EYE_L[1]], maker.layout.kpt_ind[:, EYE_L[5]]
    assert np.abs(maps[:2, r1, c1] - maps[:2, r2, c2]).max() < 0.1, "the map's lid is not closed"


def test_smoothing_lets_speech_through(faces, carphone):
    """On the talking clip, at its own frame rate, the smoothed mouth opening follows
    the network's raw one: most of its spread kept, in step with it."""
    from realtime.live.capture import VideoSource

    with VideoSource(carphone) as video:
        fps, frames = video.fps, video.read_all()
    proc = faces.fresh(max_faces=1)
    raw, smooth = [], []
    for i, img in enumerate(frames):
        big = cv2.resize(img, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        res = proc.process(Frame(big, i, i / fps))
        if res.raw and res.reconstructions:
            raw.append(float(Expression.from_landmarks(res.raw[0].landmarks).mouth))
            smooth.append(float(Expression.from_landmarks(res.reconstructions[0].landmarks).mouth))
    raw_a, smooth_a = np.array(raw), np.array(smooth)
    assert len(raw_a) > 0.9 * len(frames)
    kept = smooth_a.std() / raw_a.std()
    corr = np.corrcoef(raw_a, smooth_a)[0, 1]
    assert kept > 0.7 and corr > 0.85, f"smoothed mouth keeps {kept:.2f} of the raw spread, r {corr:.2f}"
