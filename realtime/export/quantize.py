"""Builds the int8 model the ``onnxruntime-int8`` engine runs, offline:
``python -m realtime.export.quantize [--weights BUNDLE]`` (once per machine and library
versions; it reads the training crops). The folded ONNX model quantised by onnxruntime
(static, QDQ), for CPUs with int8 dot-product instructions (AVX-512 VNNI / AVX-VNNI).

Static quantisation fixes every activation's int8 scale ahead of time from the ranges
seen on calibration crops, so nothing is measured per frame. The crops are AFLW
training faces (``SHARED_DATA / "train"``, none of them AFLW2000-3D faces), cut and
resized as training's validation crops are, RGB in [0, 1]: calibrating on anything
unlike what the engine sees would set the ranges wrong. Weights are int8 per output
channel (a folded batch norm gives channels very different ranges), activations uint8
(int8 activations measured no faster and no more accurate).

Only the network's narrow waist is int8 (``int8_layers``): the layers whose output is
at most R/8 a side (encoder blocks 4-9 and the stride-1 decoder layers among 0-6 of
the lite model), where the channels are wide. Why, measured on the lite model on a
2-core Xeon with VNNI (AFLW2000-3D balanced NME against the fp32 engine's):

* the wide layers run about twice as fast in int8;
* the thin layers at full and half resolution (3-16 channels: the stem, the first
  encoder blocks, the last decoder layers) run slower in int8 (up to 3x: too few
  channels to fill the dot products), and the decoder from R/4 on carries the map's
  sub-pixel detail: all but the last three convolutions in int8 cost 1.0 point, decoder
  layer 11 (16 channels, R/2) alone 0.45, layers 8-9 (32 channels, R/4) 0.06;
* onnxruntime has no int8 transposed convolution on the CPU: a quantised one runs in
  fp32 between a dequantise and a quantise, its weights dequantised on every call, so
  the stride-2 decoder layers stay fp32 (and see ``fp32_nodes``).

The waist alone: +0.004 point, 1.25x faster per call at batch 1 and 2.

The quantised model is cached beside the fp32 export, where the engine finds it
(``realtime.live.engines.onnx.int8_model_path``, keyed by the weights and the library
versions); the engine never reads the training data itself.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from realtime.core.mobile import MobileConfig
from realtime.core.model import DECODER, ENCODER, PRNetConfig
from realtime.core.paths import SHARED_DATA
from realtime.core.weights import Bundle
from realtime.live.engines.backends import EngineError, bundle_digest, log
from realtime.live.engines.onnx import DIGEST_KEY, export_onnx, int8_model_path

if TYPE_CHECKING:
    import onnx

#: Calibration crops: a few hundred cover the activation ranges.
CALIB_COUNT = 256
#: Layers whose output side is at most resolution / WAIST run in int8.
WAIST = 8


def calibration_crops(
    data: Path = SHARED_DATA, count: int = CALIB_COUNT, resolution: int = 128
) -> np.ndarray:
    """(count, 3, R, R) float32 RGB in [0, 1]: training crops spread over the whole
    set (a fixed seed: the same crops every time), bad fits left out as
    ``load_trainset`` does, each a plain resize of the 120 px crop
    (``groundtruth.base_affine``, as training's validation crops). Reads only these
    crops from the zip, not all 19k."""
    from realtime.train.groundtruth import NME_DROP, base_affine, read_crops

    train = Path(data) / "train"
    labels, zipped = train / "aflw_teacher_params.npz", train / "aflw_crops_120.zip"
    if not (labels.is_file() and zipped.is_file()):
        raise EngineError(
            f"int8 calibration needs the AFLW training crops ({zipped.name}, {labels.name}) in "
            f"{train}: put the shared data there or set PRNET_LIVE_SHARED"
        )
    with np.load(labels) as f:
        names = f["names"][~(f["nme21"] > NME_DROP)]
    pick = np.sort(np.random.default_rng(0).choice(len(names), min(count, len(names)), replace=False))
    affine, size = base_affine(resolution), (resolution, resolution)
    crops = read_crops(names[pick], Path(data))
    out = np.stack([cv2.warpAffine(c, affine, size, flags=cv2.INTER_LINEAR) for c in crops])
    out = out.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return out


def int8_layers(config: PRNetConfig | MobileConfig) -> tuple[str, ...]:
    """ONNX node-name prefixes (the folded model's module paths) of the layers to run
    in int8: encoder blocks and stride-1 decoder layers whose output is at most
    resolution / WAIST a side. Everything else stays fp32 (see the module docstring)."""
    side, limit, out = config.resolution, config.resolution // WAIST, []
    if config.arch == "mobile":  # ScaledMobile's paths: stages at 1/2 .. 1/32, ups at 1/16 .. 1/2
        out = [f"/model/stages.{i}/" for i in range(5) if config.resolution // 2 ** (i + 1) <= limit]
        out += [f"/model/ups.{k}/" for k in range(4) if config.resolution // 2 ** (4 - k) <= limit]
        return tuple(out)
    for i, (_, stride) in enumerate(ENCODER):
        side //= stride
        if side <= limit:
            out.append(f"/encoder/encoder.{i}/")
    for i, (_, stride) in enumerate(DECODER):
        side *= stride
        if side <= limit and stride == 1:
            out.append(f"/decoder/decoder.{i}/")
    return tuple(out)


def fp32_nodes(model: onnx.ModelProto, int8: tuple[str, ...]) -> list[str]:
    """Names of the nodes ``quantize_static`` must leave alone: those outside the
    ``int8`` layers, and a Pad that opens an int8 layer after an fp32 one (the
    quantise then comes after the Pad: with it straight after a transposed conv's ReLU,
    onnxruntime's WeightBiasQuantization would make that conv's weights int8 per
    tensor and, with no int8 transposed conv on the CPU, dequantise them every call)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    keep = []
    for n in model.graph.node:
        before = producer.get(n.input[0]) if n.input else None
        entry = n.op_type == "Pad" and (before is None or not before.name.startswith(int8))
        if entry or not n.name.startswith(int8):
            keep.append(n.name)
    return keep


def quantize_onnx(
    bundle: Bundle, data: Path = SHARED_DATA, path: str | Path | None = None, force: bool = False
) -> Path:
    """The int8 QDQ model of ``bundle``: cached, or built from ``export_onnx``'s fp32
    file and ``calibration_crops`` (EngineError when those crops are missing); ``force``
    builds it again (after a change of recipe)."""
    try:
        import onnx
        from onnxruntime import quantization as q
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:
        raise EngineError(
            f"int8 needs onnx and onnxruntime ({e.name} missing): pip install onnx onnxruntime"
        ) from None

    cfg = bundle.config
    path = Path(path) if path is not None else int8_model_path(bundle)
    if path.is_file() and not force:
        return path
    crops = calibration_crops(data, CALIB_COUNT, cfg.resolution)
    log(f"onnxruntime-int8: calibrating on {len(crops)} training crops (once; cached in {path.parent})...")
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    pre, tmp = (path.with_suffix(f".{os.getpid()}.{s}.onnx") for s in ("pre", "tmp"))
    try:
        # folds the exporter's pad arithmetic into constants and infers shapes
        # (the mobile network's Resize nodes defeat onnxruntime's symbolic shape inference)
        mobile = isinstance(cfg, MobileConfig)
        # with the heads' outputs beside the maps (the heads themselves stay fp32), so the
        # int8 engine tells a lost face and sees what covers it in the same pass
        fp32 = export_onnx(bundle, heads=True)
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=mobile)
        keep = fp32_nodes(onnx.load(str(pre)), int8_layers(cfg))
        batches = iter([{"images": crops[i : i + 16]} for i in range(0, len(crops), 16)])

        class Reader(q.CalibrationDataReader):
            def get_next(self) -> dict | None:
                return next(batches, None)

        q.quantize_static(
            str(pre),
            str(tmp),
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            nodes_to_exclude=keep,
            calibrate_method=q.CalibrationMethod.MinMax,
        )
        stamp(tmp, bundle_digest(bundle))
        tmp.replace(path)
    finally:
        pre.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    log(f"onnxruntime-int8: ready in {time.perf_counter() - t0:.1f}s")
    return path


def stamp(path: Path, digest: str) -> None:
    """Record in the model at ``path`` the digest of the weights it was made from, which
    the engine checks (a shipped int8 model must not outlive its weights)."""
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {DIGEST_KEY: digest})
    onnx.save(model, str(path))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from realtime.core.weights import BundleError, load_bundle

    doc = (__doc__ or "").split("\n\n")[0]
    ap = argparse.ArgumentParser(prog="python -m realtime.export.quantize", description=doc)
    ap.add_argument("--weights", default=None, help="bundle (default: the shipped lite model)")
    ap.add_argument("--data", type=Path, default=SHARED_DATA, help="shared data folder with train/")
    ap.add_argument("--force", action="store_true", help="build again even if cached")
    ap.add_argument(
        "--ship",
        action="store_true",
        help="also copy it beside the weights (NAME_int8.onnx), for users without the training crops",
    )
    args = ap.parse_args(argv)
    try:
        bundle = load_bundle(args.weights)
        built = quantize_onnx(bundle, args.data, force=args.force)
        print(f"wrote {built}")
        if args.ship:
            if not isinstance(bundle.path, Path):
                raise EngineError(f"--ship needs the weights as a file in a folder, not {bundle.path}")
            shipped = bundle.path.with_name(f"{bundle.path.stem}_int8.onnx")
            shutil.copyfile(built, shipped)
            print(f"wrote {shipped}")
        return 0
    except (EngineError, BundleError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
