"""Tracking on real clips with the real model: few detections, landmarks stay on the
face, ids kept, more faces than allowed counted, lost faces re-acquired; and the
crop's framing and sampling."""

from __future__ import annotations

import time
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from realtime.core.types import FaceTrack, Frame
from realtime.live.capture import VideoSource
from realtime.live.crop import Octaves, _warp_torch, crop_affines, crop_faces, to_tensor, warp
from realtime.live.faces import FaceProcessor
from realtime.live.track import CROP_SCALE, Tracker, TrackerConfig, landmark_crop


@pytest.fixture(scope="module")
def parts(bundle):
    return FaceProcessor.from_bundle(bundle, "eager", "cpu")


def _processor(parts, **kw) -> FaceProcessor:
    return parts.fresh(**kw)


def _clip(path) -> tuple[list[np.ndarray], float]:
    with VideoSource(path) as src:
        return src.read_all(), src.fps


def test_carphone_tracked_with_few_detections(parts, media):
    frames, fps = _clip(media / "carphone_176x144.mp4")
    proc = _processor(parts)
    detector = parts.detector
    detected = with_face = on_face = checked = 0
    for i, im in enumerate(frames):
        res = proc.process(Frame(im, i, i / fps))
        detected += res.detected
        with_face += len(res.reconstructions) == 1
        if i % 4 == 0 and res.raw:  # the landmarks against this frame's own detection
            dets = detector(im)
            if len(dets):
                checked += 1
                c = res.raw[0].landmarks[:, :2].mean(0)
                x1, y1, x2, y2 = dets.boxes[0]
                on_face += bool(x1 <= c[0] <= x2 and y1 <= c[1] <= y2)
    assert detected <= 0.10 * len(frames), f"detector ran on {detected} of {len(frames)} frames"
    assert with_face >= 0.95 * len(frames)
    assert on_face >= 0.9 * checked, f"landmarks on the detected face in {on_face} of {checked} frames"


def test_max_faces_counts_the_others_and_keeps_ids(parts, media):
    im = cv2.imread(str(media / "two_people.jpg"))
    one = _processor(parts, max_faces=1)
    res = one.process(Frame(im, 0, 0.0))
    assert len(res.reconstructions) == 1 and res.n_other_faces == 1
    assert res.status == "1 face (+1 not shown)"

    both = _processor(parts)
    ids = []
    for i in range(3):
        res = both.process(Frame(im, i, i / 30))
        assert res.status == "2 faces"
        ids.append(sorted(r.track_id for r in res.reconstructions))
        xs = sorted(float(r.landmarks[:, 0].mean()) for r in res.reconstructions)
        assert xs[1] - xs[0] > 200  # one mesh per person, not two on one face
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 2


def test_lost_face_passes_through_and_is_reacquired(parts, media):
    face = cv2.imread(str(media / "astronaut.png"))
    blank = np.full_like(face, 90)
    proc = _processor(parts)
    first = proc.process(Frame(face, 0, 0.0))
    assert first.status == "1 face" and first.detected
    gone = proc.process(Frame(blank, 1, 1 / 30))  # landmarks on a blank frame fail the check
    again = proc.process(Frame(blank, 2, 2 / 30))
    assert again.status == "no face" and not again.reconstructions
    assert gone.status in ("no face", "1 face")
    back = proc.process(Frame(face, 3, 3 / 30))
    assert back.detected and back.status == "1 face"
    assert back.reconstructions[0].track_id != first.reconstructions[0].track_id


@pytest.mark.parametrize("background", [True, False])
def test_new_face_found_while_tracking(parts, media, background):
    """A second face that appears beside a tracked one is picked up by the periodic
    detection (on the worker thread or inline), and the first keeps its id."""
    im = cv2.imread(str(media / "two_people.jpg"))
    h, w = im.shape[:2]
    one = im.copy()
    one[:, w // 2 :] = 90  # only the left person at first
    tracker = Tracker(parts.detector, TrackerConfig(redetect_every=5, background=background))
    proc = parts.fresh(tracker=tracker)
    first = proc.process(Frame(one, 0, 0.0))
    assert first.status == "1 face"
    tid = first.reconstructions[0].track_id
    for i in range(1, 40):
        res = proc.process(Frame(im, i, i / 30))
        assert tid in [r.track_id for r in res.reconstructions], f"frame {i}: lost the first face"
        if res.status == "2 faces":
            break
        time.sleep(1 / 30)  # camera pace: the worker's detection takes a frame or two
    assert res.status == "2 faces", "the second face was never found"
    assert i <= 5 + 15
    xs = sorted(float(r.landmarks[:, 0].mean()) for r in res.reconstructions)
    assert xs[0] < w // 2 < xs[1]


@pytest.mark.parametrize(
    "image",
    [
        None,
        np.zeros((100, 100), np.uint8),
        np.zeros((100, 100, 3), np.float32),
        np.zeros((5, 5, 3), np.uint8),
    ],
)
def test_bad_frames_never_raise(parts, image):
    res = _processor(parts).process(Frame(image, 0, 0.0))
    assert res.status.startswith("bad frame") and not res.reconstructions


def test_sanity_check_rejects_lost_landmarks():
    tracker = Tracker(lambda image: None, TrackerConfig())
    tracker._frame_size = (640, 480)
    rng = np.random.default_rng(0)
    face = rng.uniform([280, 200], [360, 280], (68, 2))
    track = FaceTrack(1, np.array([320.0, 240.0]), 80 * CROP_SCALE)
    assert tracker.sane(track, face)
    assert not tracker.sane(track, face * [1, 0] + [0, 240])  # collapsed to a line
    assert not tracker.sane(track, face + [500, 0])  # left the frame
    assert not tracker.sane(track, face + [60, 0])  # jumped most of a face in one frame
    assert not tracker.sane(track, (face - 320) * 3 + 320)  # tripled in size
    assert not tracker.sane(track, np.full((68, 2), np.nan))


def test_crop_framing_and_subpixel_sampling():
    """Landmark box centre -> crop centre, 1.44 x its side -> R; a smooth pattern
    sampled at a sub-pixel offset matches OpenCV's warp of the same affine."""
    lm = np.array([[100.0, 50.0], [160.0, 130.0]])
    c, side = landmark_crop(lm)
    to_crop, to_frame = crop_affines(c[None], np.array([side]), 128)
    assert np.allclose(to_crop[0] @ [*c, 1], [63.5, 63.5])
    assert np.isclose(to_crop[0, 0, 0], 128 / (1.44 * 80))
    assert np.allclose(to_frame[0] @ np.append(to_crop[0] @ [130, 70, 1], 1), [130, 70])

    yy, xx = np.mgrid[0:200, 0:220]
    img = np.stack([128 + 100 * np.sin(xx / 9.0), 128 + 100 * np.cos(yy / 7.0), 128 + 0 * xx], -1)
    img = img.astype(np.uint8)
    centers, sizes = np.array([[110.3, 95.7], [60.25, 70.5]]), np.array([96.0, 40.0])  # both upsampled
    batch = crop_faces(img, centers, sizes, 128, [1, 2])
    assert batch.images.shape == (2, 3, 128, 128) and batch.images.dtype == torch.float32
    for b in range(2):
        to_crop = cv2.invertAffineTransform(batch.to_frame[b])
        ref = cv2.warpAffine(img, to_crop, (128, 128), flags=cv2.INTER_LINEAR)
        got = batch.images[b].permute(1, 2, 0).numpy()[..., ::-1] * 255  # back to BGR
        assert np.abs(got[4:-4, 4:-4] - ref[4:-4, 4:-4]).mean() < 1.5


def test_cpu_crops_equal_the_torch_sampler(media):
    """The CPU's separable sampler (uint8 frame, weights folded per row and column)
    gives the torch path's crops (float frame, octaves, grid_sample, average): faces
    from 20 to 4000 px (octaves 0-5), partly or wholly off the frame, non-square
    footprints, odd frame sides (the pyramid's replicate padding), several per call."""
    rng = np.random.default_rng(3)
    photo = cv2.imread(str(media / "astronaut.png"))
    for w, h in ((640, 480), (1279, 719)):
        image = cv2.resize(photo, (w, h))
        centers = rng.uniform([-60, -60], [w + 60, h + 60], (24, 2))
        sides = np.exp(rng.uniform(np.log(20), np.log(4000), 24))
        _, to_frame = crop_affines(centers, sides, 128)
        to_frame[:8, 0, 0] *= rng.uniform(0.8, 1.2, 8)
        want = _warp_torch(Octaves(to_tensor(image)), to_frame, 128)
        for source in (Octaves(image), Octaves(to_tensor(image))):  # the uint8 frame, a float tensor
            got = warp(source, to_frame, 128)
            assert got.shape == want.shape and got.is_contiguous()
            assert (got - want).abs().max() < 1e-4


def test_the_tracker_frames_crops_where_its_framing_says(parts, media):
    """An injected framing (the expression benchmark's MovedFraming: 20 % larger crops,
    10 % of a side to the right) moves the crops of a tracked clip so, within the
    tracker's hold; the default frames on the face's own landmarks."""
    from realtime.eval.expression import MovedFraming

    frames, fps = _clip(media / "carphone_176x144.mp4")
    frames = [cv2.resize(f, (352, 288)) for f in frames[:12]]
    for framing, scale, shift in ((None, 1.0, 0.0), (MovedFraming(1.2, (0.1, 0.0)), 1.2, 0.1)):
        with _processor(parts, framing=framing, max_faces=1) as proc:
            for i, f in enumerate(frames):
                res = proc.process(Frame(f, i, i / fps))
            (track,) = proc.tracker.tracks
            c, side = landmark_crop(res.reconstructions[0].landmarks)
            hold = proc.tracker.config.hold * track.size
            assert abs(track.size - scale * side) <= hold + 1e-3
            assert np.linalg.norm(track.center - (c + [shift * side, 0.0])) <= hold + 1e-3


def test_still_mouth_framing_holds_still_as_the_mouth_opens(parts, media):
    """StillMouthFraming (the lower jaw and lips of the mean face, placed on the rest of
    the face): on a real face at rest it frames within 5 % of the face's own framing; with
    the jaw dropped and the lips parted by a fifth of the face it frames the same, where
    the face's own framing grows."""
    from realtime.live.track import MOUTH_MOVED, StillMouthFraming

    photo = cv2.imread(str(media / "astronaut.png"))
    rec = parts.reconstruct_photo(photo)
    layout = parts.decoder.layout
    framing = StillMouthFraming.of(layout)
    (c0, s0), (c1, s1) = landmark_crop(rec.landmarks), landmark_crop(framing(rec))
    assert abs(s1 / s0 - 1) < 0.05 and np.linalg.norm(c1 - c0) < 0.05 * s0
    opened = rec.landmarks.copy()
    drop = 0.2 * s0 / CROP_SCALE
    lower = [i for i in MOUTH_MOVED if i < 17 or i in (55, 56, 57, 58, 59, 65, 66, 67)]
    opened[lower, 1] += drop
    moved = replace(rec, landmarks=opened)
    assert landmark_crop(opened)[1] > s0 * 1.05  # its own framing grows
    c2, s2 = landmark_crop(framing(moved))
    assert np.isclose(s2, s1) and np.allclose(c2, c1)
