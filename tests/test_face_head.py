"""The face / not-face head (issue 28, item 2), with the shipped weights: it leaves the
lite model's maps exactly as they were; onnxruntime gives eager's logits; it tells a
face from a shifted crop and from background on AFLW2000-3D dev; and in the live path a
face that is gone is dropped in the same frame without the detector's per-frame check.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import dev_face_crops

from realtime.bench.model import face_images
from realtime.core.types import FaceTrack, Frame, Pose, Reconstruction
from realtime.live.engines import MAP_TOL, create_engine
from realtime.live.faces import FaceProcessor
from realtime.live.track import Tracker, TrackerConfig


def test_the_head_leaves_the_lite_models_maps_exactly_as_they_were(bundle):
    """The head only reads the encoder: the network built without it, from the same
    tensors, gives bit-identical maps, and forward_with_score's maps are forward's."""
    from realtime.core.model import PRNet

    assert bundle.config.face_head == "flat"
    plain = PRNet(type(bundle.config)(bundle.config.size, bundle.config.resolution))
    heads = ("face_head.", "lid_head.")
    plain.load_state_dict({k: v for k, v in bundle.state_dict.items() if not k.startswith(heads)})
    x = face_images(128, 3)
    model = bundle.build_model()
    with torch.no_grad():
        maps, logit = model.forward_with_score(x)
        assert torch.equal(maps, plain.eval()(x)) and torch.equal(maps, model(x))
    assert logit.shape == (3,)


@pytest.mark.parametrize("backend", ["onnxruntime", "cpu-fast"])
def test_the_cpu_engines_give_eagers_logits_and_lids_in_the_same_call(bundle, backend):
    """onnxruntime and the compiled engine (inductor) both run the heads in the maps'
    pass, so neither needs the detector's per-frame check, and the lids blink there too."""
    x = face_images(128, 4)
    kw = {"warmup": (2,)} if backend == "cpu-fast" else {}
    eager, ort = create_engine(bundle, "eager"), create_engine(bundle, backend, "cpu", **kw)
    assert eager.scores and ort.scores
    (o1, o2) = eager.run_all(x), ort.run_all(x)
    (m1, l1), (m2, l2) = (o1.maps, o1.logits), (o2.maps, o2.logits)
    assert l1 is not None and l2 is not None
    assert float((m1 - m2).abs().max()) / bundle.config.output_scale <= MAP_TOL
    np.testing.assert_allclose(l2, l1, atol=1e-3)
    assert o1.lids is not None and o2.lids is not None and o1.lids.shape == (4, 2)
    np.testing.assert_allclose(o2.lids, o1.lids, atol=2e-3)  # eye openings, about 0.1-0.3
    assert torch.equal(m2, ort.run(x))  # the scored call's maps are the plain call's
    eager.mirror = ort.mirror = True
    mirrored = ort.run_all(x)
    np.testing.assert_allclose(mirrored.logits, eager.run_all(x).logits, atol=1e-3)
    # the mirror image's left eye is the face's right one: its openings come back swapped
    flipped = ort.run_all(x.flip(-1), mirror=False).lids
    np.testing.assert_allclose(mirrored.lids, (o2.lids + flipped[:, ::-1]) / 2, atol=1e-4)


def test_the_head_tells_a_face_from_a_shifted_crop_and_background(bundle, shared):
    engine = create_engine(bundle, "onnxruntime")
    logit = {k: engine.run_all(v).logits for k, v in dev_face_crops(shared, bundle.config.resolution).items()}
    assert (logit["face"] > 0).mean() >= 0.95, logit["face"]
    assert (logit["shifted"] < 0).mean() >= 0.75, logit["shifted"]
    assert (logit["background"] < 0).mean() >= 0.9, logit["background"]
    assert (logit["face"] > logit["shifted"]).mean() >= 0.9  # a face above its own shifted crop


class CountingDetector:
    """MTCNN as it is, counting the calls of its last stage's check (``verify``)."""

    def __init__(self, detector):
        self.detector, self.checks = detector, 0

    def __call__(self, image):
        return self.detector(image)

    def verify(self, image, boxes):
        self.checks += 1
        return self.detector.verify(image, boxes)


@pytest.mark.parametrize("gone", ["background", "blur"])
def test_a_face_that_is_gone_is_dropped_without_the_detector_check(bundle, carphone, gone):
    """Follow the carphone face for 12 frames, then show a frame without it (the camera
    turned to the background behind, or a hand over the lens blurring everything): with
    the shipped weights the processor's tracker never asks the detector's last stage, and
    still drops the face in that very frame; the next frame finds it again. With the
    logit ignored, the same frame keeps a ghost face: the head is what drops it."""
    cap = cv2.VideoCapture(str(carphone))
    frames = [cv2.resize(cap.read()[1], (640, 480), interpolation=cv2.INTER_CUBIC) for _ in range(14)]
    cap.release()
    f = frames[12]
    empty = cv2.resize(f[:100, :100], (640, 480)) if gone == "background" else cv2.GaussianBlur(f, (0, 0), 40)
    base = FaceProcessor.from_bundle(bundle, "onnxruntime", "cpu")
    assert base.engine.scores and not base.tracker.config.verify_every_frame

    def run(config: TrackerConfig | None) -> tuple[list[int], CountingDetector, bool]:
        det = CountingDetector(base.detector)
        p = base.fresh(detector=det, tracker=Tracker(det, config) if config else None)
        p.tracker.config.background = False  # results from the frames alone
        p.tracker.config.redetect_every = 1000  # no periodic detection in the way
        faces = [len(p.process(Frame(img, i, i / 30)).reconstructions) for i, img in enumerate(frames[:12])]
        faces.append(len(p.process(Frame(empty, 12, 0.4)).reconstructions))
        result = p.process(Frame(frames[13], 13, 13 / 30))
        return [*faces, len(result.reconstructions)], det, result.detected

    faces, det, looked_again = run(None)
    assert faces == [1] * 12 + [0, 1], faces
    assert det.checks == 0
    assert looked_again  # lost: the detector looked again at once, and found the face
    ghost, _, _ = run(TrackerConfig(verify_every_frame=False, face_threshold=-np.inf, lost_threshold=-np.inf))
    assert ghost[12] == 1, ghost


def _rec(track_id: int, centre: np.ndarray, side: float, logit: float) -> Reconstruction:
    """A reconstruction whose 68 landmarks fill a box of ``side`` px around ``centre``."""
    rng = np.random.default_rng(track_id)
    lm = centre + (rng.random((68, 2)) - 0.5) * side
    lm[:2] = centre + np.array([[-0.5, -0.5], [0.5, 0.5]]) * side  # the box's corners
    pose = Pose(np.eye(3, dtype=np.float32), np.zeros(3, np.float32), 1.0, np.zeros(3, np.float32))
    return Reconstruction(
        track_id, np.c_[lm, np.zeros(68)].astype(np.float32), np.zeros((0, 3)), pose, face_logit=logit
    )


@pytest.mark.parametrize(
    "age, logit, kept, looks_again",
    [(5, 12.0, True, False), (5, -8.0, False, True), (1, -8.0, False, False)],
    ids=["a face", "a followed face gone", "a false alarm"],
)
def test_the_tracker_reads_the_logit(carphone, age, logit, kept, looks_again):
    """``Tracker.update`` beside the followed carphone face (logit 12), a second track:
    kept when it scores above 0; when a face followed for frames now scores -8 it is
    lost and the detector runs on the next frame; a detection the engine calls no face on
    its first frame is dropped without a new detection."""
    from realtime.live.detect import MTCNN

    cap = cv2.VideoCapture(str(carphone))
    frame = cv2.resize(cap.read()[1], (640, 480), interpolation=cv2.INTER_CUBIC)
    cap.release()
    det = CountingDetector(MTCNN())
    t = Tracker(det, TrackerConfig(verify_every_frame=False, background=False, redetect_every=1000))
    t.predict(frame)  # the detector finds the carphone face
    (face,) = t.tracks
    face.age = 5
    other = FaceTrack(track_id=99, center=np.array([120.0, 120.0], np.float32), size=100.0, age=age)
    t.tracks.append(other)
    recs = [
        _rec(tr.track_id, tr.center.astype(np.float64), tr.size / 1.44, lg)
        for tr, lg in ((face, 12.0), (other, logit))
    ]
    ids = t.update(recs)
    assert face.track_id in ids and (other.track_id in ids) == kept, ids
    before = t.detections
    t.predict(frame)
    assert (t.detections > before) == looks_again
    assert det.checks == 0  # no logit in doubt here: the detector's last stage was never asked


def test_a_doubtful_logit_asks_the_detectors_last_stage(carphone):
    from realtime.live.detect import MTCNN

    cap = cv2.VideoCapture(str(carphone))
    frame = cv2.resize(cap.read()[1], (640, 480), interpolation=cv2.INTER_CUBIC)
    cap.release()
    det = CountingDetector(MTCNN())
    t = Tracker(det, TrackerConfig(verify_every_frame=False, background=False))
    t.predict(frame)
    (face,) = t.tracks
    ids = t.update([_rec(face.track_id, face.center.astype(np.float64), face.size / 1.44, -1.0)])
    assert det.checks == 1  # asked once, about this crop
    assert face.track_id in ids  # and it is the carphone face: kept
