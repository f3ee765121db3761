"""Face profiling: a turned crop's label map holds its landmarks where the turned image
draws them, the face really turned by the asked angle, the image shows a face where
the map says, and ``--profiled`` puts that share of turned crops in every batch."""

import cv2
import numpy as np
import pytest
from conftest import train_crops

from realtime.live.decode import Decoder, rotation_to_angles
from realtime.train.batches import StepBatches
from realtime.train.groundtruth import Batcher, MapMaker, landmarks_2d
from realtime.train.profiling import (
    FaceProfiler,
    Turn,
    build_cache,
    fit_rotation,
    join_profiled,
    load_cache,
    rasterise,
    turn_params,
)

STEP = (np.array([0.5, 0.0]), np.array([0.0, 0.5]))  # central differences, output pixels
IDENTITY = np.array([[1.0, 0, 0], [0, 1, 0]])  # maps in 120-crop pixels
# Three training crops (near-frontal, turned, turned) and how far each turns; the sign is
# set by the fixture, away from the camera as the cache turns them.
PICK = [0, 50, 200]
TURNS = [Turn(60.0), Turn(-40.0, 8.0), Turn(30.0, -8.0)]


@pytest.fixture(scope="module")
def crops(shared):
    return train_crops(shared, PICK)


@pytest.fixture(scope="module")
def profiler(bfm):
    return FaceProfiler(bfm)


@pytest.fixture(scope="module")
def maker(bfm):
    return MapMaker(bfm, 128)


@pytest.fixture(scope="module")
def turned(crops, profiler, maker):
    """Each crop turned away from the camera (the way the cache turns them), with
    its label map in 120-crop pixels."""
    out = []
    for i, turn in enumerate(TURNS):
        yaw0 = rotation_to_angles(fit_rotation(crops.params[i]))[1]
        turn = Turn(float(np.sign(yaw0) or 1) * abs(turn.yaw), turn.pitch)
        res = profiler.profile(crops.images[i], crops.params[i], turn)
        params = turn_params(crops.params[i : i + 1], res.xform[None])
        out.append((turn, res, params, maker.maps(params, IDENTITY[None])[0].numpy()))
    return out


def visible(profiler, params, pts, tol=1.0):
    """(K,) whether each (K, 3) image-axes point is on the fit's front surface and
    away from its outlines (a depth step within a pixel: the face's edge, the nose or
    the lips in front of what they hide), where a pixel shows two surfaces at once."""
    v = profiler.vertices(params)
    zbuf, _ = rasterise((v[:, :2] + 0.5) * 4 - 0.5, v[:, 2], profiler.tris, (480, 480))
    c = np.clip(np.round((pts[:, :2] + 0.5) * 4 - 0.5).astype(int), 4, 475)
    near = np.stack([zbuf[c[:, 1] + dy, c[:, 0] + dx] for dy in range(-2, 3) for dx in range(-2, 3)], 1)
    return (pts[:, 2] >= zbuf[c[:, 1], c[:, 0]] - tol) & (np.ptp(near, 1) < 3)


def bilinear(img, x, y):
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    return (
        img[y0, x0] * (1 - fx) * (1 - fy)
        + img[y0, x0 + 1] * fx * (1 - fy)
        + img[y0 + 1, x0] * (1 - fx) * fy
        + img[y0 + 1, x0 + 1] * fx * fy
    )


def test_map_holds_the_landmarks_where_they_are_drawn(crops, profiler, maker, turned, bfm):
    """The rendered image records which source pixel it shows at each output pixel;
    at each landmark the label map gives, that is the landmark's pixel in the source
    crop (for landmarks on the visible surface before and after the turn), to 0.5
    output pixels."""
    k = maker.layout.kpt_ind
    errors = []
    for i, (_, res, params, m) in enumerate(turned):
        lm_map = m[:2, k[1], k[0]].T  # (68, 2) output pixels
        # The map's landmark pixels are the turned fit's landmark vertices, exactly.
        assert np.abs(lm_map - landmarks_2d(params, bfm)[0]).max() < 1e-3
        src = profiler.landmarks(crops.params[i])
        both = visible(profiler, crops.params[i], src) & visible(
            profiler, params[0], profiler.landmarks(params[0])
        )
        assert both.sum() >= 15, both.sum()
        for j in np.flatnonzero(both):
            # Where the image draws the landmark's source pixel: Newton steps on the
            # rendered source coordinates, from the map's landmark.
            x = lm_map[j].astype(np.float64)
            for _ in range(4):
                jac = np.stack(
                    [bilinear(res.source_xy, *(x + d)) - bilinear(res.source_xy, *(x - d)) for d in STEP], 1
                )
                x = x - np.linalg.solve(jac, bilinear(res.source_xy, *x) - src[j, :2])
            errors.append(np.linalg.norm(x - lm_map[j]))
    errors = np.array(errors)
    print(f"landmark error: median {np.median(errors):.3f}, max {errors.max():.3f} px")
    assert errors.max() < 0.5, errors.max()


def test_the_face_turned_by_the_asked_angle(crops, maker, turned):
    """Head pose read back from the label maps (the live decoder's pose fit): yaw
    moved by the asked turn, pitch by the asked pitch (within 2 degrees: the fit is
    against the mean face, not this one)."""
    dec = Decoder(maker.layout)
    before = maker.maps(crops.params, np.stack([IDENTITY] * len(crops.params))).numpy()
    for i, (turn, _, _, m) in enumerate(turned):
        a0 = dec.pose(dec.vertices(before[i : i + 1], IDENTITY[None])[0]).angles
        a1 = dec.pose(dec.vertices(m[None], IDENTITY[None])[0]).angles
        assert abs((a1[1] - a0[1]) - turn.yaw) < 2.0, (a0, a1, turn)
        assert abs((a1[0] - a0[0]) - turn.pitch) < 2.0, (a0, a1, turn)
        assert abs(a1[2] - a0[2]) < 3.0, (a0, a1, turn)


def test_the_image_shows_a_face_where_the_map_says(maker, turned):
    """The pixels drawn from the source's face cover the label map's visible face
    (its triangles rasterised at the map's positions), IoU > 0.9; and the face
    there keeps its texture (no flat smear)."""
    lay = maker.layout
    for _, res, _, m in turned:
        pts = m.reshape(3, -1)[:, lay.face_ind].T
        zbuf, _ = rasterise(pts[:, :2], pts[:, 2], lay.triangles, (120, 120))
        label = np.isfinite(zbuf)
        drawn = res.face > 0.5
        iou = (label & drawn).sum() / (label | drawn).sum()
        assert iou > 0.9, iou
        grey = cv2.cvtColor(res.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        detail = np.abs(cv2.Laplacian(grey, cv2.CV_32F))[label]
        assert detail.mean() > 1.0, detail.mean()


def test_cache_and_profiled_share_of_each_batch(crops, maker, tmp_path, monkeypatch, shared):
    """The cache builds (resumably) and loads; joined to the real crops, each batch
    of --profiled 0.25 at batch 8 holds 2 turned samples, whose maps are the turned
    fits' (the real crops' params moved by each sample's similarity)."""
    import realtime.train.profiling as profiling

    monkeypatch.setattr(profiling, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(profiling, "load_trainset", lambda _: crops)
    folder = build_cache(shared, copies=2, workers=1)
    prof = load_cache(folder)
    assert prof.images.shape == (6, 120, 120, 3) and list(prof.source) == list(np.repeat(crops.names, 2))
    # A build cut short resumes: samples without their transform are made again, the same.
    first = np.array(prof.images)
    xf = np.load(folder / "xform.npy", mmap_mode="r+")
    xf[4:] = np.nan
    xf.flush()
    np.load(folder / "images.npy", mmap_mode="r+")[4:] = 0
    with pytest.raises(SystemExit):
        load_cache(folder)
    build_cache(shared, copies=2, workers=1)
    prof = load_cache(folder)
    np.testing.assert_array_equal(prof.images, first)
    data, prof_idx = join_profiled(crops, prof, exclude=np.array([2]))
    assert len(prof_idx) == 4 and len(data.images) == 7  # the excluded crop's copies left out
    np.testing.assert_array_equal(data.images[prof_idx[0]], prof.images[0])
    np.testing.assert_allclose(data.params[prof_idx[0]], turn_params(crops.params[:1], prof.xform[:1])[0])
    # Expression labels turn with the face: a lid moved down 2 px in the crop moves down
    # the turned copy's image as the turn's in-plane part carries it (never lost, never
    # left in the crop's frame).
    crops.offsets = np.zeros((3, 32, 2), np.float32)
    crops.offsets[:, 1] = (0.0, 2.0)
    labelled, _ = join_profiled(crops, prof, exclude=np.array([2]))
    assert labelled.offsets is not None and len(labelled.offsets) == 7
    turned = labelled.offsets[prof_idx[0], 1]
    np.testing.assert_allclose(turned, prof.xform[0, :2, :2] @ np.array([0.0, 2.0]), atol=1e-5)
    assert turned[1] > 1.0  # still down the face
    crops.offsets = None
    steps = StepBatches(
        Batcher(data, maker), np.tile(np.arange(3), 8), 0, 8, 0, 4, profiled=prof_idx, share=0.25
    )
    for s in range(4):
        _, _, sel = steps[s]
        assert len(sel) == 8 and np.isin(sel, prof_idx).sum() == 2
