"""The int8 engine: its landmarks stay near fp32's on real face crops; without its
model it says how to build one, and a missing calibration folder says so, in one line.

The int8 model is built once into the cache (about 20 s on a 2-core CPU), later runs
load it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import need

from realtime.export.quantize import quantize_onnx
from realtime.live import engines as E
from realtime.live.engines.onnx import OnnxRuntimeInt8Engine

pytest.importorskip("onnx", reason="onnx not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

#: int8 vs fp32, 2D landmark distance in crop pixels at 128 px. On all 2,000
#: AFLW2000-3D crops the mean is 0.13 px (p99 0.50, worst 2.0); on these 8 crops each
#: image's mean is 0.11-0.16 px and its worst landmark 0.47 px.
MEAN_TOL_PX = 0.25
MAX_TOL_PX = 1.0


def face_crops(folder: Path, resolution: int, n: int = 8) -> torch.Tensor:
    """The first ``n`` AFLW2000-3D faces cut as the evaluation cuts them (0-90 degrees
    of yaw among them), RGB in [0, 1]."""
    from realtime.eval.landmarks import crop_affine, load_aflw2000, warp_crop

    crops = [
        cv2.cvtColor(warp_crop(s.image, crop_affine(s.pts[:2], resolution), resolution), cv2.COLOR_BGR2RGB)
        for s in load_aflw2000(folder, n)
    ]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def test_int8_landmarks_near_fp32(bundle, shared):
    need((shared / "train" / "aflw_crops_120.zip").is_file(), "no AFLW training crops for calibration")
    need((shared / "aflw2000").is_dir(), "no AFLW2000-3D images")
    quantize_onnx(bundle, shared)  # the offline build (cached after the first time)
    int8 = E.create_engine(bundle, "onnxruntime-int8")
    assert isinstance(int8, OnnxRuntimeInt8Engine) and int8.name == "onnxruntime-int8"
    x = face_crops(shared / "aflw2000", bundle.config.resolution)
    ref, out = E.create_engine(bundle, "onnxruntime")(x), int8(x)
    assert out.shape == ref.shape and out.dtype == np.float32
    col, row = bundle.layout.kpt_ind
    dist = np.linalg.norm((out - ref)[:, :2, row, col], axis=1)  # (B, 68) px
    assert dist.mean(1).max() <= MEAN_TOL_PX, dist.mean(1)
    assert dist.max() <= MAX_TOL_PX, dist.max(1)
    # the face head's logit comes out of the int8 model too (the tracker then needs no
    # O-Net check), near fp32's: every crop here is a face
    assert int8.scores
    got, want = int8.run_all(x), E.create_engine(bundle, "onnxruntime").run_all(x)
    logits, ref_logits = got.logits, want.logits
    assert logits is not None and ref_logits is not None and (logits > 0).all()
    np.testing.assert_allclose(logits, ref_logits, atol=0.1 * np.abs(ref_logits).max())
    # and the lid head's openings (eye distances; lids a tenth of one apart), from the
    # int8 waist's bottleneck
    assert got.lids is not None and want.lids is not None
    np.testing.assert_allclose(got.lids, want.lids, atol=0.02)


def test_missing_calibration_data_is_one_line(bundle, tmp_path):
    missing = tmp_path / "no-such-data"
    with pytest.raises(E.EngineError) as info:
        quantize_onnx(bundle, data=missing, path=tmp_path / "int8.onnx")
    msg = str(info.value)
    assert "\n" not in msg and str(missing / "train") in msg and "aflw_crops_120.zip" in msg, msg
    assert not (tmp_path / "int8.onnx").exists()


def test_without_its_model_the_engine_says_how_to_build_it(bundle, tmp_path, monkeypatch):
    from realtime.core.weights import load_bundle
    from realtime.live.engines import onnx

    monkeypatch.setattr(onnx, "CACHE", tmp_path / "cache")  # an empty cache: no int8 model yet
    mine = tmp_path / "mine.pt"  # and weights with none shipped beside them
    mine.write_bytes(bundle.path.read_bytes())
    with pytest.raises(E.EngineError, match="python -m realtime.export.quantize"):
        E.create_engine(load_bundle(mine), "onnxruntime-int8")


def test_the_shipped_int8_model_runs_without_the_training_crops(bundle, shared, tmp_path, monkeypatch):
    """Users have no training crops to calibrate with: the int8 model shipped beside the
    lite weights runs (so ``auto`` can time it), it is of these very weights, and one
    made from other weights is refused in one line."""
    from realtime.core.weights import load_bundle
    from realtime.export.quantize import stamp
    from realtime.live.engines import onnx

    monkeypatch.setattr(onnx, "CACHE", tmp_path / "cache")  # nothing built on this machine
    assert onnx.shipped_int8(bundle) is not None, "no int8 model ships beside the lite weights"
    int8 = E.create_engine(bundle, "onnxruntime-int8")
    if (shared / "aflw2000").is_dir():
        x = face_crops(shared / "aflw2000", bundle.config.resolution)
        ref, out = E.create_engine(bundle, "onnxruntime")(x), int8(x)
        col, row = bundle.layout.kpt_ind
        assert np.linalg.norm((out - ref)[:, :2, row, col], axis=1).mean(1).max() <= MEAN_TOL_PX
    # a copy of the weights with a stale int8 model beside them
    mine = tmp_path / "mine.pt"
    mine.write_bytes(bundle.path.read_bytes())
    stale = tmp_path / "mine_int8.onnx"
    stale.write_bytes(onnx.shipped_int8(bundle).read_bytes())
    stamp(stale, "0123456789abcdef")
    with pytest.raises(E.EngineError) as info:
        E.create_engine(load_bundle(mine), "onnxruntime-int8")
    assert "other weights" in str(info.value) and "\n" not in str(info.value)


def test_cpu_only(bundle):
    with pytest.raises(E.EngineError, match="CPU only"):
        OnnxRuntimeInt8Engine(bundle, "cuda")
