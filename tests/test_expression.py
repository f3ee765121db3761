"""The face moves: the shipped model opens the mouth where the photo does (its lids do not
close yet: the closed-eye test is an expected failure), the labels it is trained on carry
both, the decoder moves the lids to a lid head's openings, and the smoothing lets speech
through.

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


@pytest.mark.xfail(
    strict=True,
    reason="issue 34, not reached: with the lid head the shipped lids follow MediaPipe's at r 0.73 on "
    "held-out crops, but this shut eye reads 0.078 of the eye distance against 0.13-0.16 open "
    "(MediaPipe: under 0.05)",
)
def test_a_closed_eye_reads_closed(faces, shared):
    shut = [float(_expression(faces, shared, n).eyes) for n in CLOSED_EYES]
    opened = [float(_expression(faces, shared, n).eyes) for n in OPEN_EYES]
    assert max(shut) < 0.5 * min(opened), f"closed {shut}, open {opened} (lid opening / eye distance)"


def test_the_lid_warp_closes_an_eye_and_leaves_the_brow_and_nose(bfm):
    """Moving the upper lid's control points down onto the lower lid closes the mesh's
    eye; the brow and the nose tip do not move."""
    from realtime.core.landmarks import BROW_L, EYE_L
    from realtime.core.lidlip import CONTROLS
    from realtime.train.groundtruth import MapMaker, base_affine

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


def test_the_decoder_moves_the_lids_to_the_lid_heads_openings(bfm, layout, decoder):
    """A lid head's openings (one eye shut, the other wide) are what the decoded
    landmarks read, and the corners, brows, nose and mouth do not move."""
    from realtime.core.landmarks import BROW_L, BROW_R, eye_openings
    from realtime.train.groundtruth import MapMaker, base_affine

    maker = MapMaker(bfm, layout.resolution)
    params = np.zeros((1, 62), np.float32)
    params[0, :12] = [6e-4, 0, 0, 60, 0, 6e-4, 0, 60, 0, 0, 6e-4, 0]
    maps = maker.maps(params, base_affine(layout.resolution)[None]).numpy()
    to_frame = np.array([[[4.0, 0, 100], [0, 4.0, 100]]])
    plain = decoder.decode(maps, to_frame, [0])[0].landmarks
    wanted = np.array([[0.01, 0.4]])
    moved = decoder.decode(maps, to_frame, [0], wanted)[0].landmarks
    before, after = eye_openings(plain), eye_openings(moved)
    assert before.min() > 0.1, before
    np.testing.assert_allclose(after, wanted[0], atol=0.02)
    for k in (36, 39, 42, 45, *BROW_L, *BROW_R, 30, 33, 48, 54, 62, 66):
        assert np.abs(moved[k] - plain[k]).max() < 1e-3, f"landmark {k} moved"


def _talking_head(bfm, layout, decoder, frames: int, fps: float):
    """A still head (a fit's mesh, its position shaken by 0.3 px of noise each frame, as
    a network's output jitters) whose mouth opens and closes 3 times a second by up to
    a quarter of the eye distance, as Reconstructions; and the true openings."""
    from realtime.core.lidlip import CONTROLS
    from realtime.train.groundtruth import MapMaker, base_affine

    maker = MapMaker(bfm, layout.resolution)
    params = np.zeros((1, 62), np.float32)
    params[0, :12] = [6e-4, 0, 0, 60, 0, 6e-4, 0, 60, 0, 0, 6e-4, 0]
    lm = maker.vertices(params)[0].numpy()[bfm["kpt_ind"], :2]
    iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
    col = {int(k): i for i, k in enumerate(CONTROLS)}
    rng = np.random.default_rng(0)
    recs, truth = [], []
    for i in range(frames):
        opening = 0.125 * iod * (1 - np.cos(2 * np.pi * 3.0 * i / fps))
        offsets = np.zeros((1, len(CONTROLS), 2), np.float32)
        for k in (61, 62, 63, 50, 51, 52):
            offsets[0, col[k], 1] = -opening / 2
        for k in (65, 66, 67, 56, 57, 58):
            offsets[0, col[k], 1] = opening / 2
        maps = maker.maps(params, base_affine(layout.resolution)[None], offsets).numpy()
        to_frame = np.array([[4.0, 0, 100], [0, 4.0, 100]])  # the crop, 4x, in a frame
        to_frame[:, 2] += rng.uniform(-0.3, 0.3, 2)  # the head shakes a little
        recs.append(decoder.decode(maps, to_frame[None], [0])[0])
        truth.append(float(Expression.from_landmarks(recs[-1].landmarks).mouth))
    return recs, np.array(truth)


@pytest.mark.parametrize("expression_beta", [None, 0.0])
def test_smoothing_lets_speech_through_and_holds_a_still_head(bfm, layout, decoder, expression_beta):
    """A still head that talks: the smoothed mouth follows the opening (most of its
    spread kept, in step), while the head's own jitter is still cut several-fold. With
    the mouth's own speed turned off (``expression_beta`` 0: one speed per face, the
    head's), the mouth is held still and the test must see it."""
    from realtime.live.smooth import OneEuroConfig, OneEuroFilter

    fps = 30.0
    recs, truth = _talking_head(bfm, layout, decoder, 60, fps)
    cfg = OneEuroConfig() if expression_beta is None else OneEuroConfig(expression_beta=expression_beta)
    f = OneEuroFilter(cfg)
    out = [f(r, i / fps) for i, r in enumerate(recs)]
    got = np.array([float(Expression.from_landmarks(r.landmarks).mouth) for r in out])
    kept, corr = got[10:].std() / truth[10:].std(), np.corrcoef(got[10:], truth[10:])[0, 1]

    def jitter(rs):  # frame-to-frame motion of the nose and the eye corners, px
        p = np.stack([r.landmarks[[27, 30, 36, 39, 42, 45], :2] for r in rs[10:]])
        return float(np.sqrt((np.diff(p, axis=0) ** 2).sum(-1).mean()))

    follows = kept > 0.7 and corr > 0.9
    raw, smoothed = jitter(recs), jitter(out)
    assert raw > 3 * smoothed, f"head jitter raw {raw:.3f}, smoothed {smoothed:.3f} px"
    if expression_beta is None:
        assert follows, f"the smoothed mouth keeps {kept:.2f} of the opening's spread, r {corr:.2f}"
    else:
        assert not follows, f"with one speed per face the mouth still moved ({kept:.2f}, r {corr:.2f})"


def test_the_lid_head_fit_is_a_linear_layer_on_the_raw_bottleneck():
    """realtime.train.lid_head's ridge fit, on features of very different scales with a
    dead (constant) one among them, as a bottleneck has: the Linear layer it returns
    reads the raw features and gives held-apart targets back."""
    import torch

    from realtime.train.lid_head import fit_ridge

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2000, 64)) * np.geomspace(1e-2, 1e2, 64) + rng.normal(size=64) * 5
    feats[:, 7] = 3.0  # a channel that never fires
    truth = rng.normal(size=(64, 2)) / np.geomspace(1e-2, 1e2, 64)[:, None] * 0.01
    truth[7] = 0.0
    targets = 0.12 + (feats - feats.mean(0)) @ truth + rng.normal(size=(2000, 2)) * 1e-3
    head = fit_ridge(feats[:1500].astype(np.float32), targets[:1500], lam=1.0)
    with torch.no_grad():
        got = head(torch.from_numpy(feats[1500:].astype(np.float32))).numpy()
    assert head.weight.shape == (2, 64) and torch.isfinite(head.weight).all()
    assert np.abs(got - targets[1500:]).max() < 0.01, np.abs(got - targets[1500:]).max()


@pytest.mark.parametrize("lids", ["default", "as the mouth"])
def test_smoothing_lets_a_squint_through(bfm, layout, decoder, lids):
    """A still head narrowing and widening its eyes (a lid head's openings, 0.12 +-
    0.04 eye distances once a second, as a squint or a slow blink): the smoothed lids
    follow (most of the spread kept, in step). The lids move about a quarter as far
    as the mouth, so with the mouth's still floor and beta they are held still, and
    the test must see it."""
    from realtime.core.landmarks import eye_openings
    from realtime.live.smooth import OneEuroConfig, OneEuroFilter
    from realtime.train.groundtruth import MapMaker, base_affine

    fps, rng = 30.0, np.random.default_rng(0)
    params = np.zeros((1, 62), np.float32)
    params[0, :12] = [6e-4, 0, 0, 60, 0, 6e-4, 0, 60, 0, 0, 6e-4, 0]
    maps = MapMaker(bfm, layout.resolution).maps(params, base_affine(layout.resolution)[None]).numpy()
    recs, truth = [], []
    for i in range(60):
        wanted = np.full((1, 2), 0.12 + 0.04 * np.sin(2 * np.pi * i / fps), np.float32)
        to_frame = np.array([[4.0, 0, 100], [0, 4.0, 100]])
        to_frame[:, 2] += rng.uniform(-0.3, 0.3, 2)  # the head shakes a little
        recs.append(decoder.decode(maps, to_frame[None], [0], wanted)[0])
        truth.append(float(eye_openings(recs[-1].landmarks).mean()))
    cfg = OneEuroConfig() if lids == "default" else OneEuroConfig(lid_beta=20.0, lid_still=0.4)
    f = OneEuroFilter(cfg)
    got = np.array([float(eye_openings(f(r, i / fps).landmarks).mean()) for i, r in enumerate(recs)])
    truth = np.array(truth)
    kept, corr = got[10:].std() / truth[10:].std(), np.corrcoef(got[10:], truth[10:])[0, 1]
    follows = kept > 0.7 and corr > 0.8  # default: 0.84, r 0.90; the mouth's: 0.32, r 0.44
    if lids == "default":
        assert follows, f"the smoothed lids keep {kept:.2f} of the squint's spread, r {corr:.2f}"
    else:
        assert not follows, f"with the mouth's floor the lids still moved ({kept:.2f}, r {corr:.2f})"
