"""Every engine gives the eager fp32 maps: position map within 2e-3 (sigmoid units),
landmarks within 0.5 px, on real face crops; int8 (which ``auto`` may pick) landmarks
within APPROX_LANDMARK_TOL.

The compiled CPU engine is tested on the lite model only: inductor takes tens of
seconds per model on two busy cores (the full model's folding, which is where the
algebra could go wrong, is tested without compiling). GPU engines skip without CUDA.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from realtime.bench.model import face_images, random_bundle
from realtime.live import engines as E
from realtime.live.engines import backends as B
from realtime.live.engines import choose as C
from realtime.live.engines import rewrite as R
from realtime.live.engines.cpu import CpuFastEngine


def _check(engine, bundle, batch: int = 2) -> dict:
    images = face_images(bundle.config.resolution, batch)
    ref = B.EagerEngine(bundle)(images)
    out = engine(images)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == ref.shape
    err = E.compare(ref, out, bundle)
    if not engine.exact:  # int8: near fp32, not equal (tests/test_quantize.py)
        assert engine.name == "onnxruntime-int8"
        assert err["landmark_max_px"] <= E.APPROX_LANDMARK_TOL, err
        return err
    assert err["map_max_abs"] <= E.MAP_TOL, err
    assert err["landmark_max_px"] <= E.LANDMARK_TOL, err
    return err


@pytest.fixture(scope="module")
def choice_cache(tmp_path_factory):
    """An empty cache for the remembered engine choice, so auto really times here."""
    from realtime.live.engines import choose

    saved, choose.CACHE = choose.CACHE, tmp_path_factory.mktemp("cache")
    yield choose.CACHE
    choose.CACHE = saved


@pytest.fixture(scope="module")
def auto_engine(bundle, choice_cache):
    """What the app gets on this machine on a first start (compiled once for the module)."""
    return E.create_engine(bundle, "auto", "cpu", warmup=(2,))  # one graph: batch >= 2


def test_eager_outputs_crop_pixels(bundle):
    engine = E.create_engine(bundle, "eager")
    maps = engine(face_images(bundle.config.resolution, 1))
    r = bundle.config.resolution
    assert maps.shape == (1, 3, r, r) and engine.resolution == r and engine.name == "eager"
    assert 0 < maps.min() and maps.max() < bundle.config.output_scale


def test_folded_lite_matches_eager(bundle):
    engine = CpuFastEngine(bundle, compile=False)
    err = _check(engine, bundle, batch=3)
    assert err["map_max_abs"] < 1e-4  # folding is exact up to fp32 rounding


def test_folded_full_model_matches_eager():
    """Size 16 at 256 px, random weights with calibrated batch norms: every layer
    type of the full model (strided shortcuts, both deconv strides) folded."""
    full = random_bundle(16, 256)
    engine = CpuFastEngine(full, compile=False)  # Winograd on the wide decoder convs
    assert any(isinstance(m, R._WinogradConv) for m in engine.model.modules())
    _check(engine, full, batch=1)


def test_subpixel_rewrite_equals_strided_transposed_conv():
    """Stride-2 SAME deconv (full transposed conv, cropped by 1 as in DeconvBN) ==
    pixel_shuffle of one 3x3 conv with the gathered taps."""
    torch.manual_seed(0)
    x, w = torch.randn(2, 8, 7, 9), torch.randn(8, 5, 4, 4)
    ref = torch.nn.functional.conv_transpose2d(x, w, stride=2)[:, :, 1:15, 1:19]
    k = R.subpixel_weight(w)
    out = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(x, k, padding=1), 2)
    assert k.shape == (20, 8, 3, 3) and out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-5


def test_winograd_conv_equals_direct_conv():
    """F(4x4, 4x4) on an odd-sized map (partial tiles) with the stride-1 deconv's
    (2, 1) padding: equal to the direct conv up to fp32 rounding."""
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 64, 13, 10), torch.randn(32, 64, 4, 4) / 32, torch.randn(32)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 1, 2, 1)), w, b)
    out = R._WinogradConv(w, b, (2, 1))(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_auto_times_the_cpu_engines_and_keeps_the_fastest(auto_engine, bundle):
    lines = {r.split(":")[0]: r for r in auto_engine.reasons}
    # all three built (the lite weights ship their int8 model), eager not needed
    assert set(lines) == {"cpu-fast", "onnxruntime", "onnxruntime-int8"}, auto_engine.reasons
    ms = {name: float(line.split("(")[1].split(" ms")[0]) for name, line in lines.items()}
    if "fastest measured" in lines[auto_engine.name]:
        assert ms[auto_engine.name] == min(ms.values())
    else:  # an onnxruntime engine, near enough to spare every start inductor's compile
        name = auto_engine.name
        assert name.startswith("onnxruntime") and "starts without compiling" in lines[name]
        assert ms[name] <= C.START_MARGIN * ms["cpu-fast"]
    _check(auto_engine, bundle, batch=2)
    _check(auto_engine, bundle, batch=3)  # same graph: the batch dimension is dynamic


def test_an_engine_that_compiles_at_each_start_must_be_clearly_faster():
    """Inductor (cpu-fast) costs about 10 s at every start: kept only when more than
    START_MARGIN faster per call than the best engine that loads without compiling."""
    compiling = {"cpu-fast"}
    assert C.decide({"cpu-fast": 8.3, "onnxruntime": 8.7}, compiling)[0] == "onnxruntime"
    assert C.decide({"cpu-fast": 8.3, "onnxruntime": 9.5}, compiling)[0] == "onnxruntime"
    assert C.decide({"cpu-fast": 8.3, "onnxruntime": 9.7}, compiling)[0] == "cpu-fast"
    assert C.decide({"cpu-fast": 9.0, "onnxruntime": 6.4}, compiling)[0] == "onnxruntime"
    assert C.decide({"cpu-fast": 9.0}, compiling)[0] == "cpu-fast"
    name, verdicts = C.decide({"cpu-fast": 8.3, "onnxruntime": 8.7}, compiling)
    assert "within 15% of cpu-fast" in verdicts[name] and "not enough faster" in verdicts["cpu-fast"]
    assert C.decide({"cpu-fast": 9.0, "onnxruntime": 6.4}, compiling)[1]["cpu-fast"] == "built, slower here"


def test_auto_remembers_its_choice_and_builds_only_the_winner(auto_engine, bundle, choice_cache):
    """A later start builds only the engine the first one measured fastest; a changed
    key (other weights) or retime measures again."""
    remembered = json.loads((choice_cache / "engine-choice.json").read_text())
    assert [v["backend"] for v in remembered.values()] == [auto_engine.name]
    again = E.create_engine(bundle, "auto", "cpu", warmup=(2,))
    assert again.name == auto_engine.name
    assert len(again.reasons) == 1 and "remembered" in again.reasons[0], again.reasons
    _check(again, bundle, batch=2)
    other = random_bundle(8, 128, seed=1)  # other weights: another key, timed afresh
    fresh = E.create_engine(other, "auto", "cpu", warmup=(2,))
    assert any("ms per call" in r for r in fresh.reasons), fresh.reasons
    assert len(json.loads((choice_cache / "engine-choice.json").read_text())) == 2
    retimed = E.create_engine(bundle, "auto", "cpu", retime=True, warmup=(2,))
    assert any("ms per call" in r for r in retimed.reasons), retimed.reasons


def test_auto_on_cuda_without_gpu_skips_with_reasons(bundle):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(E.EngineError) as info:
        E.create_engine(bundle, "auto", "cuda")
    text = str(info.value)
    assert "tensorrt: skipped" in text and "cuda-fp16: skipped" in text and "no CUDA GPU" in text


def test_onnxruntime_matches_eager(bundle):
    pytest.importorskip("onnx", reason="onnx not installed")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    _check(E.create_engine(bundle, "onnxruntime"), bundle, batch=2)
    assert E.export_onnx(bundle).stat().st_size > 1e6


@pytest.mark.parametrize("backend", ["cuda-fp16", "tensorrt"])
def test_gpu_engines_match_eager(bundle, backend):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: GPU engines not tested")
    if backend == "tensorrt":
        pytest.importorskip("torch_tensorrt", reason="torch-tensorrt not installed")
    _check(E.create_engine(bundle, backend, "cuda"), bundle, batch=1)


def test_unknown_backend_is_one_clear_line(bundle):
    with pytest.raises(E.EngineError, match="unknown backend 'fastest'.*choose one of auto"):
        E.create_engine(bundle, "fastest")
    with pytest.raises(E.EngineError, match="CPU only"):
        E.create_engine(bundle, "cpu-fast", "cuda")


def test_benchmark_command_writes_json_table_and_chart(tmp_path):
    from realtime.bench.__main__ import main

    rc = main(
        [
            "--part",
            "model",
            "--models",
            "lite",
            "--backends",
            "eager,cuda-fp16",
            "--batches",
            "1",
            "--reps",
            "3",
            "--seconds",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    lite = report["models"][0]
    ms = lite["engines"]["eager"]["batches"]["1"]["ms_per_frame"]
    assert ms["median"] > 0 and ms["p95"] >= ms["median"]
    assert report["environment"]["torch"] == torch.__version__
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in lite["skipped"]["cuda-fp16"]
    assert "| eager | 1 |" in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench.png").stat().st_size > 1000
