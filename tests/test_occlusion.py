"""Occlusion-aware effects: what covers a face stays in front of masks and swaps.

Real parts throughout: the shipped visibility network and PRNet, the GL renderer on
llvmpipe, real faces (AFLW crops and their 3DMM fits, a real webcam clip), and
occluders from the held-out pool the network never trained on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from realtime.core.types import UserError, Visibility
from realtime.eval.occlusion import hand_trial, occluder_trial, painted
from realtime.live.capture import clip_frames
from realtime.live.occlusion import DEFAULT_WEIGHTS, TorchVisibility, load_net, load_visibility
from realtime.render.effects import MASKS
from realtime.render.effects.swap import FaceSwap
from realtime.render.renderer import Renderer


def half_hidden(width: int, height: int, side: int = 64) -> Visibility:
    """A visibility map over the whole frame with its left half hidden."""
    mask = np.ones((side, side), np.float32)
    mask[:, : side // 2] = 0
    sx, sy = width / side, height / side
    return Visibility(mask, np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]]))


@pytest.mark.gl
@pytest.mark.parametrize("name", [*MASKS, "depth", "swap"])
def test_every_surface_effect_obeys_the_visibility_map(ctx, layout, teacher, name):
    """Hidden pixels keep the frame; visible ones get what they got without a map."""
    img, rec = teacher(10)
    h, w = img.shape[:2]
    r = Renderer(layout, w, h, ctx)
    try:
        effect = name
        if name == "swap":
            source_img, source = teacher(40)
            effect = FaceSwap(layout, source_img, source)
        plain = r.render(img, [rec], effect)
        hidden = r.render(img, [replace(rec, visibility=half_hidden(w, h))], effect)
    finally:
        r.release()
    before, after = painted(plain, img), painted(hidden, img)
    band = int(w / 64 * 2)  # the map's soft edge: two of its pixels
    left, right = slice(0, w // 2 - band), slice(w // 2 + band, w)
    assert before[:, left].sum() > 2000, "the effect should reach the left half"
    assert after[:, left].sum() == 0
    assert (after[:, right] == before[:, right]).mean() > 0.999


@pytest.fixture(scope="module")
def visibility():
    return TorchVisibility()


@pytest.fixture(scope="module")
def processor(bundle, visibility):
    from realtime.live.faces import FaceProcessor

    return FaceProcessor.from_bundle(bundle, "eager", "cpu", filter_factory=None, visibility=visibility)


@pytest.mark.gl
def test_a_hand_over_a_real_face_is_left_unpainted(ctx, layout, processor, media):
    """A held-out synthetic hand over the mouth of a real webcam face: the paint mask
    (the tiger)
    leaves most of the hand alone, and still covers the rest of the face."""
    frames = clip_frames(media / "kpa_webcam_160x120.avi", (640, 480), step=20, limit=4)
    r = Renderer(layout, *frames[0].shape[1::-1], ctx)
    try:
        res = hand_trial(processor, r, frames, "tiger")
    finally:
        r.release()
    assert res["frames"] >= 3
    assert res["hand_painted_without"] > 0.6, res  # the problem the network solves
    assert res["hand_painted_with_occlusion"] < 0.2, res
    assert res["rest_coverage_kept"] > 0.7, res  # PRNet itself moves under the hand: see the note


@pytest.mark.gl
def test_finger_bars_over_a_real_face_are_measured(ctx, layout, processor, media):
    """Held-out finger bars in the face's own skin tone over real webcam frames, the
    eval's trial: without occlusion the mask paints the bars; the network leaves some of
    them alone and the rest of the face painted. (Issue 35 item 5's target, <= 10 % of
    the bars painted with >= 90 % of the face kept: the shipped network paints 8.7 % of
    them over the eval's clip frames and photos, and keeps 87.3 % of the face.)"""
    frames = clip_frames(media / "kpa_webcam_160x120.avi", (640, 480), step=20, limit=4)
    r = Renderer(layout, *frames[0].shape[1::-1], ctx)
    try:
        res = occluder_trial(processor, r, frames, "tiger", "fingers")
    finally:
        r.release()
    assert res["frames"] >= 3, res
    assert res["fingers_painted_without"] > 0.6, res  # the problem
    assert res["fingers_painted_with_occlusion"] < res["fingers_painted_without"] - 0.1, res
    assert res["rest_coverage_kept"] > 0.7, res


def test_finger_bars_are_held_out_skin_toned_and_over_the_face(shared, bfm):
    """The "fingers" occluder: shapes from the numbered pools (every 5th number only in
    evaluation), bars in the donor's skin tone, over the face and across its border
    (partly outside the face's footprint)."""
    from realtime.train.groundtruth import MapMaker, load_trainset
    from realtime.train.occluders import (
        HELD_OUT_EVERY,
        KIND_P,
        KINDS,
        Donor,
        draw_occluder,
        footprint,
        shape_number,
    )

    assert KIND_P[KINDS.index("fingers")] > 0.1 and abs(sum(KIND_P) - 1) < 1e-9
    rng = np.random.default_rng(0)
    assert all(shape_number(rng, True) % HELD_OUT_EVERY == 0 for _ in range(200))
    assert all(shape_number(rng, False) % HELD_OUT_EVERY != 0 for _ in range(200))

    data = load_trainset(shared)
    n = 24
    maker = MapMaker(bfm, 120)
    tris = np.ascontiguousarray(bfm["triangles"], np.int64)
    verts = maker.vertices(data.params[:n]).numpy()
    over, chroma = [], []
    for i in range(n):
        donor = Donor(data.images[n + i])
        img, alpha = draw_occluder(
            data.images[i], data.pts68[i, :2].T, rng, donor, held_out=i % 2 == 0, kind="fingers"
        )
        bars = alpha > 0.95
        assert bars.sum() > 100, "bars of a finger's size"
        assert (img[alpha == 0] == data.images[i][alpha == 0]).all(), "nothing drawn outside the bars"
        foot = footprint(verts[i], tris, 120)
        over.append((bars & foot).sum() / bars.sum())
        skin = np.median(donor.skin(np.random.default_rng(1), (32, 32)).reshape(-1, 3), 0)
        bar = np.median(img[bars].astype(np.float64), 0)
        chroma.append(np.abs(bar / bar.sum() - skin / skin.sum()).max())
    over = np.array(over)
    assert np.median(chroma) < 0.04 and np.quantile(chroma, 0.9) < 0.1, chroma  # the donor's skin colour
    assert (over > 0.05).mean() > 0.9, over  # over the face
    assert np.median(over) > 0.4, over
    assert (over < 0.9).mean() > 0.5, over  # across its border, partly outside it


def test_the_network_sees_a_held_out_occluder(shared, bfm, visibility):
    """On held-out training crops with held-out occluders, the predicted visible face
    matches the footprint left uncovered (IoU), and a clean face is seen whole."""
    from realtime.train.batches import to_input
    from realtime.train.groundtruth import MapMaker, base_affine, load_trainset
    from realtime.train.occluders import Donor, footprint, sample
    from realtime.train.visibility import RESOLUTION, split, upsample

    data = load_trainset(shared)
    _, held = split(len(data.images))
    rows = held[:24]
    maker = MapMaker(bfm, RESOLUTION)
    tris = np.ascontiguousarray(bfm["triangles"], np.int64)
    verts = maker.vertices(data.params[rows]).numpy()
    rng = np.random.default_rng(3)
    donors = [Donor(data.images[i]) for i in held[-20:]]
    aff = base_affine(RESOLUTION)
    ious = {}
    for n in (0, 1):
        imgs, targets = [], []
        for v, i in zip(verts, rows, strict=True):
            img, t = sample(
                data.images[i], footprint(v, tris), data.pts68[i, :2].T, aff, rng, donors, True, 128, n
            )
            imgs.append(img)
            targets.append(t > 0.5)
        pred = upsample(visibility.run(to_input(np.stack(imgs), torch.device("cpu")))) > 0.5
        t = np.stack(targets)
        ious[n] = ((pred & t).sum((1, 2)) / (pred | t).sum((1, 2))).mean()
    assert ious[0] > 0.85 and ious[1] > 0.8, ious


def test_footprint_and_targets(shared, bfm):
    """The training target: the fit's footprint holds the face's landmarks, and what an
    occluder covers is not visible."""
    from realtime.train.groundtruth import MapMaker, base_affine, load_trainset
    from realtime.train.occluders import Donor, footprint, sample

    data = load_trainset(shared)
    maker = MapMaker(bfm, 128)
    v = maker.vertices(data.params[:1]).numpy()[0]
    foot = footprint(v, np.ascontiguousarray(bfm["triangles"], np.int64))
    lm = np.round(data.pts68[0, :2].T).astype(int)
    assert foot[lm[:, 1], lm[:, 0]].mean() > 0.95
    assert 0.2 < foot.mean() < 0.8
    lm120, aff = data.pts68[0, :2].T, base_affine(128)
    donors = [Donor(data.images[5])]
    img, vis = sample(data.images[0], foot, lm120, aff, np.random.default_rng(0), donors, True, 128, n=2)
    _, clean = sample(data.images[0], foot, lm120, aff, np.random.default_rng(0), donors, True, 128, n=0)
    assert img.shape == (128, 128, 3)
    assert (vis <= clean + 1e-6).all()
    assert (vis > 0.5).sum() < 0.97 * (clean > 0.5).sum(), "the occluders hide part of the face"


def test_bad_visibility_weights_get_one_clear_line(tmp_path):
    bad = tmp_path / "v.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a visibility weights file") as e:
        load_net(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="--no-occlusion"):
        load_net(tmp_path / "missing.pt")


def test_both_backends_agree():
    """onnxruntime and PyTorch give the same map for the same crops."""
    import torch

    x = torch.rand(2, 3, 128, 128)
    a = TorchVisibility(DEFAULT_WEIGHTS).run(x)
    b = load_visibility("cpu").run(x)
    assert a.shape == (2, 64, 64) and np.abs(a - b).max() < 1e-3


def test_the_network_beside_the_engine_gives_the_same_maps(bundle, media):
    """Live input runs the visibility network on a thread of its own while the engine
    runs (``set_overlap``): every face gets the same map it gets after the engine, and
    closing the processor ends that thread."""
    import threading

    from realtime.core.types import Frame
    from realtime.live.faces import FaceProcessor

    frames = clip_frames(media / "kpa_webcam_160x120.avi", (640, 480), step=10, limit=5)
    maps = {}
    for overlap in (False, True):
        with FaceProcessor.from_bundle(
            bundle, "onnxruntime", "cpu", filter_factory=None, visibility=load_visibility()
        ) as faces:
            faces.set_overlap(overlap)
            recs = [faces.process(Frame(f, i, i / 30)).reconstructions for i, f in enumerate(frames)]
            assert faces.overlap is overlap and all(r and r[0].visibility is not None for r in recs), recs
            maps[overlap] = [r[0].visibility.mask for r in recs]
            helpers = [t for t in threading.enumerate() if t.name.startswith("visibility")]
            assert bool(helpers) is overlap
        assert not [t for t in threading.enumerate() if t.name.startswith("visibility") and t.is_alive()]
    for a, b in zip(maps[False], maps[True], strict=True):
        np.testing.assert_array_equal(a, b)
