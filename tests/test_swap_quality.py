"""The swap-quality benchmark (realtime.eval.swap) at CI size, asserting what
a user would check: passing a clip through is lossless to the measure, a self-swap
beats a flat grey texture, and the identity distance to the source falls when the
source's texture is used. Plus its measures and its one-line answer without dlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import need

from realtime.eval import identity as ident
from realtime.eval import measures as ms
from realtime.eval import swap as sq
from realtime.render.context import GLContextError, create_context

pytestmark = pytest.mark.gl


@pytest.fixture(scope="module")
def run(bundle, shared):
    from realtime.live.faces import FaceProcessor

    try:
        create_context().release()
    except GLContextError as e:
        need(False, str(e))
    return sq.Runner(bundle, FaceProcessor.from_bundle(bundle, "eager", "cpu"))


def dlib_ok() -> bool:
    try:
        ident.Identity()
    except ident.IdentityUnavailable:
        return False
    return True


@pytest.fixture(scope="module")
def small(run):
    """A small run: 16 frames of carphone at 352 x 288, one relit portrait, 2 pairs."""
    return sq.run_benchmark(
        run,
        clips=(("carphone_176x144.mp4", 352, 288),),
        portraits=("obama_portrait.jpg",),
        pairs=2,
        frames=16,
        identity=dlib_ok(),
        progress=False,
    )


def test_passthrough_is_lossless_to_the_measure(small):
    assert small["summary"]["passthrough_psnr_db"] > 35


def test_self_swap_beats_a_flat_grey_texture(small):
    clip = small["clips"]["carphone_176x144.mp4"]
    print({k: round(v, 3) for k, v in clip.items() if isinstance(v, float)})
    assert clip["self_psnr"] > clip["grey_psnr"] + 1.0
    assert clip["self_ssim"] > clip["grey_ssim"]
    assert clip["edge_ratio"] < 1.5 and clip["flicker_ratio"] < 2.0


def test_relit_control_takes_the_new_light(small):
    """Swapping the unlit portrait onto its relit self comes out nearer the relit input
    than the unlit portrait is: the swap wears the live light, not the photo's."""
    relit = small["relit"]["obama_portrait.jpg"]
    print(relit)
    assert relit["relit_psnr"] > relit["relit_input_psnr"] + 2.0


def test_identity_moves_toward_the_source(small):
    need(dlib_ok(), "dlib and face-recognition-models are not installed (pip install -e '.[eval]')")
    ident = small["identity"]
    assert ident["pairs"] >= 1
    for pair in ident["per_pair"]:
        assert pair["to_source"] < pair["source_to_target"], pair  # the untouched target's distance
        assert pair["to_source"] < pair["grey_to_source"], pair  # the same swap without the texture


def test_contact_sheet_rows(run, small):
    sheet = sq.contact_sheet(run.sheet)
    assert sheet.shape[1] == 3 * sq.TILE and sheet.shape[0] > 2 * sq.TILE


def test_measures():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), np.uint8)
    lm = np.stack([40 + 80 * rng.random(68), 20 + 80 * rng.random(68)], 1)
    hull = ms.face_hull(img.shape, lm)
    assert ms.psnr(img, img, hull) == ms.PSNR_CAP and ms.ssim(img, img, hull) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    assert 25 < ms.psnr(noisy, img, hull) < 35 and ms.ssim(noisy, img, hull) < 0.999
    band = ms.boundary_band(img.shape, lm)
    assert band.any() and (band & hull).any() and (band & ~hull).any()


def test_missing_dlib_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib raises ImportError
    with pytest.raises(ident.IdentityUnavailable) as e:
        ident.Identity()
    msg = str(e.value)
    assert "\n" not in msg and "pip install -e '.[eval]'" in msg


def test_evaluate_dispatches_the_swap_subcommand(capsys):
    from realtime.eval.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(["swap", "--help"])
    assert e.value.code == 0
    assert "realtime.eval swap" in capsys.readouterr().out
