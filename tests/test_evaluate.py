"""Evaluation protocol: a perfect prediction scores 0; the real model scores sanely."""

import numpy as np

from realtime.decode import Decoder
from realtime.engines import create_engine
from realtime.evaluate import crop_affine, evaluate, landmark_nme, load_aflw2000, nme_table


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
    # A trained model lands far closer than a face-box guess (which scores ~20%).
    assert res["nme2d"]["all"] < 12.0, res["nme2d"]
