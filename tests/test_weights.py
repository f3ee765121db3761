"""Bundles: the shipped one loads; damaged or mismatched ones get one clear line."""

import subprocess
import sys

import pytest
import torch

from realtime.core.model import PRNetConfig
from realtime.core.weights import Bundle, BundleError, load_bundle, save_bundle


def test_shipped_bundle_is_complete(bundle):
    assert bundle.config.resolution == bundle.layout.resolution
    assert bundle.layout.kpt_ind.shape == (2, 68)
    assert bundle.layout.canonical.shape == (bundle.layout.face_mask.sum(), 3)
    assert "source" in bundle.provenance
    model = bundle.build_model()
    r = bundle.config.resolution
    with torch.no_grad():
        assert model(torch.rand(1, 3, r, r)).shape == (1, 3, r, r)


def one_line_error(path) -> str:
    with pytest.raises(BundleError) as e:
        load_bundle(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_bad_bundles_get_one_clear_line(bundle, tmp_path):
    good = bundle.path.read_bytes()
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(good[: len(good) // 2])
    assert "unreadable" in one_line_error(trunc)
    assert "not found" in one_line_error(tmp_path / "missing.pt")

    arch = tmp_path / "arch.pt"
    state = dict(bundle.state_dict)
    state.pop("conv.conv.weight")
    save_bundle(Bundle(bundle.config, state, bundle.layout), arch)
    assert "does not match" in one_line_error(arch)

    wrong_size = tmp_path / "size.pt"
    save_bundle(
        Bundle(PRNetConfig(size=16, resolution=bundle.config.resolution), bundle.state_dict, bundle.layout),
        wrong_size,
    )
    assert "does not match" in one_line_error(wrong_size)

    nan = tmp_path / "nan.pt"
    state = dict(bundle.state_dict)
    state["conv.conv.weight"] = state["conv.conv.weight"].clone().fill_(float("nan"))
    save_bundle(Bundle(bundle.config, state, bundle.layout), nan)
    assert "non-finite" in one_line_error(nan)

    tampered = tmp_path / "tampered.pt"
    payload = torch.load(bundle.path, weights_only=True)
    payload["state_dict"]["conv.conv.weight"] = payload["state_dict"]["conv.conv.weight"] * 2
    torch.save(payload, tampered)
    assert "checksum" in one_line_error(tampered)

    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    assert "not a PRNet Live weights bundle" in one_line_error(other)


def test_cli_reports_a_bad_bundle_without_traceback(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a bundle")
    r = subprocess.run(
        [sys.executable, "-m", "realtime.core.weights", "info", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
