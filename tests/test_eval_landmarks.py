"""The AFLW2000-3D landmark evaluation (realtime.eval.landmarks): a perfect prediction
scores 0; the shipped model scores near its model card; mirror averaging, turned and
occluded crops."""

import cv2
import numpy as np
import torch

from realtime.core.nme import landmark_nme
from realtime.core.uv import MIRROR_68
from realtime.eval.landmarks import (
    crop_affine,
    evaluate,
    load_aflw2000,
    nme_table,
    occlude,
    warp_crop,
)
from realtime.live.decode import Decoder
from realtime.live.engines import create_engine


def test_protocol_arithmetic(shared):
    samples = load_aflw2000(shared / "aflw2000", limit=6)
    for s in samples:
        assert landmark_nme(s.pts, s.pts) == (0.0, 0.0)
        shifted = s.pts.copy()
        shifted[0] += 1.0  # one pixel right: NME = 1 / sqrt(w h)
        lo, hi = s.pts[:2].min(1), s.pts[:2].max(1)
        assert np.isclose(landmark_nme(shifted, s.pts)[0], 1 / np.sqrt(np.prod(hi - lo)))
    table = nme_table(np.array([0.01, 0.02, 0.04]), np.array([10.0, -45.0, 80.0]))
    assert np.isclose(table["balanced"], 100 * (0.01 + 0.02 + 0.04) / 3)
    # The crop frames the landmarks' box as in training: centred, 1.44x its longer side.
    a = crop_affine(samples[0].pts[:2], 128)
    p = a[:, :2] @ samples[0].pts[:2] + a[:, 2:]
    assert np.isclose((p.max(1) - p.min(1)).max(), 128 / 1.44)
    assert np.allclose((p.max(1) + p.min(1)) / 2, 63.5)


def test_shipped_model_finds_landmarks(bundle, shared):
    samples = load_aflw2000(shared / "aflw2000", limit=16)
    res = evaluate(samples, create_engine(bundle, "eager"), Decoder(bundle.layout), progress=False)
    # The shipped lite model scored 3.60 % on these 16 images (its card's 4.54 % is the
    # balanced figure over all 2,000, turned faces weighing more); the bound leaves half
    # a point for a retrained model of about the same accuracy, and no more.
    assert res["nme2d"]["all"] < 4.1, res["nme2d"]


def test_mirror_averaging_is_symmetric_and_more_accurate(bundle, shared):
    """Averaging with the mirror image: a mirrored photo gets exactly the mirrored
    landmarks (left and right swapped), and on real faces the error drops."""
    samples = load_aflw2000(shared / "aflw2000", limit=48)
    plain = create_engine(bundle, "eager")
    mirror = create_engine(bundle, "eager", mirror=True)
    decoder = Decoder(bundle.layout)
    r = bundle.config.resolution
    s = samples[0]
    crop = cv2.cvtColor(warp_crop(s.image, crop_affine(s.pts[:2], r), r), cv2.COLOR_BGR2RGB)
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
    both = mirror(torch.cat([x, x.flip(-1)]))
    k = bundle.layout.kpt_ind
    seen, flipped = both[0][:, k[1], k[0]], both[1][:, k[1], k[0]]
    assert np.abs(flipped[0] - (r - 1 - seen[0, MIRROR_68])).max() < 1e-3
    assert np.abs(flipped[1:] - seen[1:, MIRROR_68]).max() < 1e-3
    a = evaluate(samples, plain, decoder, progress=False)["nme2d"]["all"]
    b = evaluate(samples, mirror, decoder, progress=False)["nme2d"]["all"]
    assert b < a, (a, b)


def test_turned_and_occluded_crops_are_read_back_into_the_image(bundle, shared):
    """--roll turns each crop and the landmarks must come back through that turn: read
    through the plain crop instead they would sit 30 degrees off (NME ~18 %).
    --occlude paints a box in the face's part of each crop: the error grows, and a
    face still comes out."""
    samples = load_aflw2000(shared / "aflw2000", limit=16)
    engine, decoder = create_engine(bundle, "eager"), Decoder(bundle.layout)
    clean = evaluate(samples, engine, decoder, progress=False)["nme2d"]["all"]
    turned = evaluate(samples, engine, decoder, progress=False, roll=30)["nme2d"]["all"]
    assert turned < 12.0, turned
    crop = np.full((128, 128, 3), 7, np.uint8)
    occlude(crop, np.random.default_rng(0))
    box = (crop != 7).any(-1)
    assert 0.25**2 <= box.mean() <= 0.4**2 + 0.01 and not box[: 128 // 4].any()
    covered = evaluate(samples, engine, decoder, progress=False, occluded=True)["nme2d"]["all"]
    assert clean < covered < 12.0, (clean, covered)
