"""int8 engine: the folded ONNX model quantised by onnxruntime (static, QDQ), for CPUs
with int8 dot-product instructions (AVX-512 VNNI / AVX-VNNI), where int8 convolutions
run up to 4x the multiply-accumulates of fp32 per cycle.

Static quantisation fixes every activation's int8 scale ahead of time from the ranges
seen on calibration crops, so nothing is measured per frame. The crops are AFLW
training faces (``SHARED_DATA / "train"``, none of them AFLW2000-3D faces), framed and
resized exactly as the validation crops of training are, RGB in [0, 1]: a calibration
set unlike what the engine sees would set the ranges wrong. Weights are int8 per output
channel (a folded batch norm gives channels very different ranges). The last layers
stay fp32 (``KEEP_FP32``): they write the position map, whose error is the landmark
error, and they are a small part of the work.

The quantised model is cached beside the fp32 export (``CACHE / "onnx"``), keyed by the
weights and everything in the recipe, so the crops are needed only once per machine.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.engines.backends import (
    EngineError,
    OnnxRuntimeEngine,
    _versions_key,
    bundle_digest,
    export_onnx,
    log,
    ort_session,
)
from realtime.paths import CACHE, SHARED_DATA
from realtime.weights import Bundle

#: Calibration crops: a few hundred cover the activation ranges (more moved no figure).
CALIB_COUNT = 256
#: Trailing convolutions (counted from the output) left in fp32, with the sigmoid after them.
KEEP_FP32 = 3
#: Bumped whenever the recipe changes, so a cached model from an older one is not reused.
RECIPE = "qdq-u8s8-perchannel-minmax-v1"


def calibration_crops(data: Path = SHARED_DATA, count: int = CALIB_COUNT, resolution: int = 128) -> np.ndarray:
    """(count, 3, R, R) float32 RGB in [0, 1]: training crops spread over the whole set
    (a fixed seed, so the same crops every time), cut as training's validation crops
    are (``groundtruth.base_affine``: a plain resize of the 120 px crop), bad fits left
    out as ``load_trainset`` does. Reads only these crops from the zip, not all 19k."""
    from realtime.train.groundtruth import NME_DROP, base_affine

    train = Path(data) / "train"
    labels, crops = train / "aflw_teacher_params.npz", train / "aflw_crops_120.zip"
    if not (labels.is_file() and crops.is_file()):
        raise EngineError(
            f"int8 calibration needs the AFLW training crops ({crops.name}, {labels.name}) in {train}: "
            "put the shared data there or set PRNET_LIVE_SHARED"
        )
    with np.load(labels) as f:
        names, nme = f["names"], f["nme21"]
    names = names[~(nme > NME_DROP)]
    pick = np.sort(np.random.default_rng(0).choice(len(names), min(count, len(names)), replace=False))
    out = np.empty((len(pick), 3, resolution, resolution), np.float32)
    with zipfile.ZipFile(crops) as z:
        for k, i in enumerate(pick):
            bgr = cv2.imdecode(np.frombuffer(z.read(f"images/{names[i]}"), np.uint8), cv2.IMREAD_COLOR)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            img = cv2.warpAffine(rgb, base_affine(resolution), (resolution, resolution), flags=cv2.INTER_LINEAR)
            out[k] = img.transpose(2, 0, 1) / 255.0
    return out


def _fp32_tail(model) -> list[str]:
    """Names of the last ``KEEP_FP32`` convolutions and every node after the first of
    them (the sigmoid and the scaling to crop pixels)."""
    convs = [i for i, n in enumerate(model.graph.node) if n.op_type in ("Conv", "ConvTranspose")]
    first = convs[-KEEP_FP32] if KEEP_FP32 else len(model.graph.node)
    return [n.name for n in model.graph.node[first:]]


def quantize_onnx(bundle: Bundle, data: Path = SHARED_DATA, path: str | Path | None = None) -> Path:
    """The int8 QDQ model of ``bundle`` (cached; built from ``export_onnx``'s fp32 file
    and ``calibration_crops`` when not). Raises EngineError when it must be built and
    the calibration crops are missing."""
    import onnx
    import onnxruntime as ort
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    r = bundle.config.resolution
    if path is None:
        key = _versions_key(bundle_digest(bundle), torch.__version__, ort.__version__, RECIPE, CALIB_COUNT, KEEP_FP32)
        path = CACHE / "onnx" / f"prnet_s{bundle.config.size}_r{r}_int8_{key}.onnx"
    path = Path(path)
    if path.is_file():
        return path
    crops = calibration_crops(data, CALIB_COUNT, r)
    log(f"onnxruntime-int8: calibrating on {len(crops)} training crops (once; cached in {path.parent})...")
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    pre = path.with_suffix(".pre.onnx")
    quant_pre_process(str(export_onnx(bundle)), str(pre))  # folds the exporter's shape arithmetic

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(crops[i : i + 16] for i in range(0, len(crops), 16))

        def get_next(self) -> dict | None:
            x = next(self.batches, None)
            return None if x is None else {"images": x}

    tmp = path.with_suffix(".tmp.onnx")
    try:
        q.quantize_static(
            str(pre),
            str(tmp),
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            nodes_to_exclude=_fp32_tail(onnx.load(str(pre))),
            calibrate_method=q.CalibrationMethod.MinMax,
        )
    finally:
        pre.unlink(missing_ok=True)
    tmp.replace(path)
    log(f"onnxruntime-int8: ready in {time.perf_counter() - t0:.1f}s")
    return path


class OnnxRuntimeInt8Engine(OnnxRuntimeEngine):
    """``quantize_onnx``'s int8 model run by onnxruntime on the CPU, with the fp32
    engine's session options and calls (only the model file differs). CPU only: the
    int8 kernels are the point."""

    name = "onnxruntime-int8"

    def __init__(self, bundle: Bundle, device: str = "cpu", data: Path = SHARED_DATA):
        if device != "cpu":
            raise EngineError("CPU only (device='cpu')")
        self.resolution = bundle.config.resolution
        self.session = ort_session(quantize_onnx(bundle, data), device)
