"""Official-weights import: the name mapping covers the released checkpoint, and an
original TF1 resfcn256 graph with random weights gives the same maps as our PRNet
after import (max abs difference <= 1e-4)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED

from realtime.core.weights import BundleError, load_bundle
from realtime.export.tf_import import UV_DATA, import_prnet, is_optimizer_variable, name_map, read_index

PRNET_UV = SHARED / "prnet-uv"
REAL_INDEX = PRNET_UV / "256_256_resfcn256_weight.index"
UV_FILES = (
    "face_ind.txt",
    "uv_kpt_ind.txt",
    "uv_face_mask.png",
    "uv_weight_mask.png",
    "canonical_vertices.npy",
)
HAVE_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_slim"))


def test_mapping_covers_released_checkpoint():
    names = read_index(REAL_INDEX)
    weights = {n for n in names if not is_optimizer_variable(n)}
    assert len(weights) == 245 and len(names) == 545  # the rest is Adam state
    assert set(name_map().values()) == weights
    assert names["resfcn256/Conv2d_transpose_16/BatchNorm/gamma"].shape == (3,)
    assert names["resfcn256/resBlock_2/shortcut/weights"].shape == (1, 1, 32, 64)


def test_incomplete_checkout_is_one_clear_line(tmp_path):
    with pytest.raises(BundleError, match="not a complete PRNet checkout: missing Data/net-data"):
        import_prnet(tmp_path, tmp_path / "out.pt")
    cmd = [
        sys.executable,
        "-m",
        "realtime.export.tf_import",
        str(tmp_path),
        "-o",
        str(tmp_path / "o.pt"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert run.stderr.startswith("error:") and "not a complete PRNet checkout" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not HAVE_TF, reason="needs TensorFlow: pip install tensorflow-cpu tf-slim")
def test_import_matches_original_tf_graph(tmp_path):
    ref = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("tf_reference.py")), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert ref.returncode == 0, ref.stderr[-2000:]
    images, expected = np.load(tmp_path / "images.npy"), np.load(tmp_path / "expected.npy")
    (tmp_path / UV_DATA).mkdir(parents=True)
    for name in UV_FILES:
        shutil.copy(PRNET_UV / name, tmp_path / UV_DATA / name)

    out = import_prnet(tmp_path, tmp_path / "official.pt")
    bundle = load_bundle(out)
    with torch.no_grad():
        ours = bundle.build_model()(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()

    expected = expected.transpose(0, 3, 1, 2)
    # Sanity of the test itself: maps spread over the sigmoid and depend on the input.
    assert expected.std() > 0.08 and ((expected > 0.02) & (expected < 0.98)).mean() > 0.8
    assert np.abs(expected[0] - expected[1]).mean() > 0.01
    assert np.abs(ours - expected).max() <= 1e-4
    assert bundle.config.size == 16 and bundle.config.resolution == 256
    assert bundle.layout.face_mask.sum() == len(bundle.layout.canonical) == 43867
    assert bundle.layout.weight_mask.max() == pytest.approx(16.0)
    assert bundle.provenance["ignored_non_optimizer_variables"] == []
