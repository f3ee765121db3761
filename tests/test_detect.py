"""MTCNN on real media: faces found in real clips, none where there are none."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from realtime.live.detect import MTCNN, DetectorError, nms


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    return MTCNN()


def _frames(path, step: int = 1) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out, i = [], 0
    while True:
        ok, im = cap.read()
        if not ok:
            break
        if i % step == 0:
            out.append(im)
        i += 1
    assert out, f"could not read {path}"
    return out


@pytest.mark.parametrize(
    "clip, step, recall",
    [
        ("kpa_webcam_160x120.avi", 2, 0.95),
        ("carphone_176x144.mp4", 3, 0.95),
        ("hamilton_profile_640x360.mp4", 7, 0.85),  # mostly profile; the full clip gives ~0.91
    ],
)
def test_recall_on_real_clips(detector, media, clip, step, recall):
    frames = _frames(media / clip, step)
    found = np.mean([len(detector(f)) > 0 for f in frames])
    assert found >= recall, f"face found in {found:.0%} of {len(frames)} frames of {clip}"


def test_two_people_both_found_with_sane_landmarks(detector, media):
    dets = detector(cv2.imread(str(media / "two_people.jpg")))
    assert len(dets) == 2
    centres = (dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2
    assert abs(centres[0, 0] - centres[1, 0]) > 200  # two different people, side by side
    for box, pts in zip(dets.boxes, dets.landmarks, strict=True):
        assert ((pts >= box[:2]) & (pts <= box[2:])).all()  # the five points lie in the box
        eyes, nose, mouth = pts[:2], pts[2], pts[3:]
        assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]  # left before right
        assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()  # eyes above nose above mouth
    assert (dets.scores > 0.9).all()


@pytest.mark.parametrize("name", ["astronaut.png", "biden_portrait.jpg"])
def test_single_portraits(detector, media, name):
    dets = detector(cv2.imread(str(media / name)))
    assert len(dets) == 1


def test_no_face_on_flat_or_textured_images(detector):
    rng = np.random.default_rng(0)
    flat = np.full((240, 320, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(noise, (0, 0), 3)
    for im in (flat, noise, texture):
        assert len(detector(im)) == 0


def test_small_faces_found_in_tiny_frames(detector, media):
    """The 160 x 120 clip's faces are ~50 px; half-size they are ~25 px."""
    frame = _frames(media / "kpa_webcam_160x120.avi", 20)[0]
    dets = detector(frame)
    assert len(dets) == 1
    small = np.zeros((120, 160, 3), np.uint8)
    small[30:90, 40:120] = cv2.resize(frame, (80, 60), interpolation=cv2.INTER_AREA)
    dets_small = detector(small)
    assert len(dets_small) == 1
    side = dets_small.boxes[0, 2] - dets_small.boxes[0, 0]
    assert 15 < side < 40


def test_batched_pyramid_matches_scale_by_scale(detector, media):
    """P-Net over the packed mosaic gives the same scores as over each scale alone."""
    import torch.nn.functional as F

    from realtime.live.crop import to_tensor

    img = to_tensor(cv2.imread(str(media / "astronaut.png")))
    levels, cw, ch, owner = detector._layout(img.shape[-1], img.shape[-2])
    canvas = torch.zeros((1, 3, ch, cw))
    for lv in levels:
        canvas[..., lv.y : lv.y + lv.h, lv.x : lv.x + lv.w] = F.interpolate(img, (lv.h, lv.w), mode="area")
    with torch.inference_mode():
        mosaic, _ = detector.pnet(detector._normalise(canvas))
        for lv in levels[:: max(1, len(levels) // 3)]:
            alone, _ = detector.pnet(detector._normalise(F.interpolate(img, (lv.h, lv.w), mode="area")))
            n_r, n_c = (lv.h - 12) // 2 + 1, (lv.w - 12) // 2 + 1
            part = mosaic[0, lv.y // 2 : lv.y // 2 + n_r, lv.x // 2 : lv.x // 2 + n_c]
            torch.testing.assert_close(part, alone[0, :n_r, :n_c], atol=1e-5, rtol=1e-4)


def test_nms_keeps_best_and_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [2, 2, 5, 5]], float)
    scores = np.array([0.8, 0.9, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 3]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [1, 2]


def test_bad_inputs_say_what_to_do(tmp_path, detector):
    with pytest.raises(DetectorError, match="not found"):
        MTCNN(weights=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(DetectorError, match="convert_mtcnn"):
        MTCNN(weights=bad)
    with pytest.raises(ValueError, match="uint8 BGR"):
        detector(np.zeros((10, 10), np.float32))
