"""Ground-truth maps reproduce the labels; augmentation keeps image and map aligned."""

import cv2
import numpy as np
import pytest

from realtime.core.uv import MIRROR_68
from realtime.train.groundtruth import (
    CROP,
    HUMAN21_TO_68,
    Batcher,
    MapMaker,
    TrainSet,
    base_affine,
    random_affine,
    refit_to_human,
)


@pytest.fixture(scope="module")
def labelled(shared):
    with np.load(shared / "train" / "aflw_teacher_params.npz") as f:
        return f["names"][:64], f["params"][:64], f["pts68"][:64]


@pytest.fixture(scope="module")
def maker(bfm):
    return MapMaker(bfm, 128)


def kpts(maker, maps):
    k = maker.layout.kpt_ind
    return maps[:, :, k[1], k[0]].numpy()


def test_maps_reproduce_labelled_landmarks(maker, labelled):
    _, params, pts = labelled
    r = maker.layout.resolution
    maps = maker.maps(params, np.stack([base_affine(r)] * len(params)))
    expect = (pts[:, :2] + 0.5) * r / 120 - 0.5
    err = np.linalg.norm(kpts(maker, maps)[:, :2] - expect, axis=1)
    assert err.max() < 0.5
    # Off-face pixels are empty, face pixels hold points inside the crop.
    face = maker.layout.face_mask
    assert (maps[:, :, ~face] == 0).all()
    xy = maps[:, :2][:, :, face]
    assert xy.min() > -0.3 * r and xy.max() < 1.3 * r  # some crops clip the face


def test_augmentation_keeps_image_and_map_aligned(maker, labelled):
    """Crops whose only content is a white dot on each labelled landmark, augmented
    (rotation, scale, shift, colour, occlusion, blur): the landmarks read from each
    augmented map land on the dots of the augmented image."""
    names, params, pts = labelled
    n = 16
    imgs = np.zeros((n, 120, 120, 3), np.uint8)
    for i in range(n):
        for x, y in pts[i, :2].T:
            cv2.circle(imgs[i], (int(round(x)), int(round(y))), 1, (255, 255, 255), -1)
    data = TrainSet(imgs, params[:n], pts[:n], names[:n])
    x, y = Batcher(data, maker, augment=True).batch(np.arange(n), np.random.default_rng(3))
    assert x.shape == (n, 3, 128, 128) and y.shape == (n, 3, 128, 128)
    bright = x.amax(1).numpy()
    k = kpts(maker, y)
    hits = []
    for i in range(n):
        for cx, cy in np.round(k[i, :2].T).astype(int):
            if 1 <= cx < 127 and 1 <= cy < 127:
                hits.append(bright[i, cy - 1 : cy + 2, cx - 1 : cx + 2].max() > 0.3)
    # Occluders hide some dots; a misaligned map would miss nearly all of them.
    assert np.mean(hits) > 0.8, np.mean(hits)
    # The augmentation really moved things: maps differ from the plain resize.
    plain = maker.maps(params[:n], np.stack([base_affine(128)] * n))
    assert (y - plain).abs().amax() > 5


def _ranges(**strengths) -> tuple[float, float, float, float]:
    """(largest rotation in degrees, smallest and largest scale, largest shift in crop
    pixels) over 2,000 draws of ``random_affine(**strengths)``."""
    rng = np.random.default_rng(0)
    to_base = np.linalg.inv(base_affine(128)[:, :2])
    centre = np.array([CROP - 1, CROP - 1, 2.0]) / 2  # the crop centre, homogeneous
    rot, scale, shift = [], [], []
    for _ in range(2000):
        a = random_affine(rng, 128, **strengths)
        m = a[:2, :2] @ to_base  # what the augmentation adds to the plain resize
        rot.append(abs(np.degrees(np.arctan2(m[1, 0], m[0, 0]))))
        scale.append(np.sqrt(np.linalg.det(m)))
        shift.append(np.abs(a[:2] @ centre - (128 - 1) / 2).max())
    return max(rot), min(scale), max(scale), max(shift)


def test_augmentation_strength_scales_every_range(maker, labelled):
    """--aug-strength 0.5 keeps rotation within +-22.5 deg, scale within 0.95-1.1 and
    shifts within 5 % of the crop while still using them; --framing-strength 1 beside it
    widens the scale and shift back to the paper's 0.9-1.2 and 10 %, the rotation
    staying; strength 0 is the plain resize, pixels and maps alike."""
    rot, lo, hi, shift = _ranges(strength=0.5)
    assert 20 < rot <= 22.5 + 1e-6
    assert 0.95 - 1e-6 <= lo < 0.96 and 1.09 < hi <= 1.1 + 1e-6
    assert 0.04 * 128 < shift <= 0.05 * 128 + 1e-6
    rot, lo, hi, shift = _ranges(strength=0.5, framing=1.0)
    assert 20 < rot <= 22.5 + 1e-6
    assert 0.9 - 1e-6 <= lo < 0.91 and 1.19 < hi <= 1.2 + 1e-6
    assert 0.09 * 128 < shift <= 0.1 * 128 + 1e-6
    names, params, pts = labelled
    imgs = np.random.default_rng(1).integers(0, 255, (8, CROP, CROP, 3), dtype=np.uint8)
    data = TrainSet(imgs, params[:8], pts[:8], names[:8])
    none = Batcher(data, maker, augment=True, strength=0.0).batch(np.arange(8), np.random.default_rng(2))
    plain = Batcher(data, maker, augment=False).batch(np.arange(8), np.random.default_rng(2))
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(none, plain, strict=True))


def test_mirrored_maps_hold_the_mirrored_face(maker, labelled):
    """A mirroring affine: the landmarks read from the map are the labelled ones
    reflected and swapped left for right, and every face pixel holds the point of the
    plain map's mirror pixel (the layout is symmetric), reflected."""
    _, params, pts = labelled
    r = maker.layout.resolution
    flip = np.array([[-1.0, 0, CROP - 1], [0, 1, 0], [0, 0, 1]])
    a = np.vstack([base_affine(r), [0, 0, 1]]) @ flip
    maps = maker.maps(params, np.stack([a[:2]] * len(params)))
    mirrored_pts = pts[:, :2, MIRROR_68].copy()
    mirrored_pts[:, 0] = CROP - 1 - mirrored_pts[:, 0]
    expect = (mirrored_pts + 0.5) * r / CROP - 0.5
    assert np.linalg.norm(kpts(maker, maps)[:, :2] - expect, axis=1).max() < 0.5
    plain = maker.maps(params, np.stack([base_affine(r)] * len(params))).numpy()
    back = plain[:, :, :, ::-1].copy()
    back[:, 0] = r - 1 - back[:, 0]
    both = maker.layout.face_mask & maker.layout.face_mask[:, ::-1]
    err = np.linalg.norm((maps.numpy() - back)[:, :2][:, :, both], axis=1)
    assert np.median(err) < 0.01 and np.percentile(err, 99) < 0.5, (np.median(err), np.percentile(err, 99))


def test_refit_moves_labels_toward_the_hand_marked_points(shared, bfm, maker):
    """Refitted labels agree better with AFLW's annotators at the marked points, stay a
    face (the other landmarks move a few percent of the face size, not more), and a
    crop with no marks keeps the teacher's fit exactly."""
    with np.load(shared / "train" / "aflw_teacher_params.npz") as f:
        params = f["params"][:400]
    with np.load(shared / "train" / "aflw_crops_labels21.npz") as f:
        marks = f["pts21_crop120"][:400].astype(np.float32)
    marks[0] = -1  # no marks
    new = refit_to_human(params, marks, bfm)
    assert np.array_equal(new[0], params[0])
    before = maker.vertices(params)[:, maker.kpt_ind, :2].numpy()
    after = maker.vertices(new)[:, maker.kpt_ind, :2].numpy()
    box = before.max(1) - before.min(1)
    size = np.sqrt(box[:, 0] * box[:, 1])
    err_before, err_after = [], []
    for j, ks in HUMAN21_TO_68.items():
        m = (marks[:, :, j - 1] >= 0).all(1)
        h = marks[m, :, j - 1]
        err_before.append(np.linalg.norm(before[m][:, ks].mean(1) - h, axis=1) / size[m])
        err_after.append(np.linalg.norm(after[m][:, ks].mean(1) - h, axis=1) / size[m])
    err_before, err_after = np.concatenate(err_before), np.concatenate(err_after)
    assert np.median(err_after) < 0.85 * np.median(err_before)
    move = np.linalg.norm(after - before, axis=2).mean(1) / size
    assert move.max() <= 0.08 and 0.01 < np.median(move) < 0.04


def test_still_mouth_crops_are_framed_as_the_live_tracker_frames_them(maker, labelled):
    """--still-mouth: each crop's landmarks, read from its map, framed by the live
    tracker's StillMouthFraming, fill the crop as the plain crops' own landmarks fill
    theirs (same centre and side), and the maps stay on the crops' faces."""
    from realtime.live.track import landmark_crop, still_mouth

    names, params, pts = labelled
    imgs = np.zeros((16, CROP, CROP, 3), np.uint8)
    data = TrainSet(imgs, params[:16], pts[:16], names[:16])
    rng = np.random.default_rng(0)
    plain = Batcher(data, maker, augment=False).batch(np.arange(16), rng)[1]
    still = Batcher(data, maker, augment=False, still_mouth=True)
    maps = still.batch(np.arange(16), rng)[1]
    mean = still.still_mean
    moved = 0
    for p, s in zip(kpts(maker, plain), kpts(maker, maps), strict=True):
        (c0, s0), (c1, s1) = landmark_crop(p[:2].T), landmark_crop(still_mouth(s[:2].T, mean))
        assert abs(s1 - s0) < 0.02 * s0 and np.linalg.norm(c1 - c0) < 0.02 * s0
        moved += not np.allclose(p, s)
    assert moved >= 8  # the framing really changed


def test_a_still_mouth_share_frames_some_crops_each_way(maker, labelled):
    """--still-mouth 0.5: with the augmentation's draws at zero, each crop's map is
    either its plain framing's or its still-mouth framing's, and a batch has both."""
    names, params, pts = labelled
    data = TrainSet(np.zeros((16, CROP, CROP, 3), np.uint8), params[:16], pts[:16], names[:16])
    rng = np.random.default_rng(0)
    plain = Batcher(data, maker, augment=False).batch(np.arange(16), rng)[1]
    still = Batcher(data, maker, augment=False, still_mouth=1.0).batch(np.arange(16), rng)[1]
    mixed = Batcher(data, maker, strength=0.0, still_mouth=0.5).batch(np.arange(16), rng)[1]
    kinds = []
    for p, s, m in zip(plain, still, mixed, strict=True):
        is_plain, is_still = np.allclose(m, p, atol=1e-4), np.allclose(m, s, atol=1e-4)
        assert is_plain != is_still  # one framing or the other, and they differ
        kinds.append(is_still)
    assert 3 <= sum(kinds) <= 13
