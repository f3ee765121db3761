"""A roofline projection of the GPU frame path for GPUs we do not have:
``python -m realtime.bench --part roofline``.

Every convolution and dense layer the frame path runs (MTCNN's check of a tracked face,
a full detection, the engine's folded network) is hooked on one real frame and its
FLOPs and bytes are counted: inputs, outputs and weights once each, plus one read and
one write of each output for the epilogue (bias, ReLU, residual) where it is not fused.
The crop and the decode are counted from their tensor sizes. A stage's projected time
on a GPU is the sum over its layers of max(FLOPs / peak FLOP/s, bytes / bandwidth)
plus a launch floor per kernel where no CUDA graph replays them (MTCNN). It is a
projection, not a measurement: it assumes kernels that reach the roofline, which
small layers do not; the H100 row can be checked against the measured figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from realtime.core.weights import Bundle, load_bundle

LAUNCH_US = 4.0  # per kernel launched from Python (no graph): a few microseconds on any CUDA GPU


@dataclass(frozen=True)
class GPU:
    name: str
    tflops: float  # peak of the precision the engine runs on that card
    gbs: float  # memory bandwidth, GB/s
    bytes_per_value: int  # fp32 4, fp16 2


GPUS = (
    GPU("GTX 1080 (Pascal, fp32: its fp16 runs at 1/64 rate)", 8.9, 320.0, 4),
    GPU("H100 SXM (fp16 tensor cores, dense)", 989.0, 3350.0, 2),
)


@dataclass
class Layer:
    flops: float
    values: float  # values moved (times bytes_per_value = bytes)


def _hooked(modules: list[nn.Module], run) -> list[Layer]:
    """Run ``run()`` with every conv / dense layer of ``modules`` counted."""
    layers: list[Layer] = []

    def hook(m: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0]
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            flops = 2.0 * output.numel() * k
        elif isinstance(m, nn.ConvTranspose2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            flops = 2.0 * x.numel() * k
        else:
            assert isinstance(m, nn.Linear)  # the only other layer hooked below
            flops = 2.0 * output.numel() * m.in_features
        weights = sum(p.numel() for p in m.parameters(recurse=False))
        layers.append(Layer(flops, x.numel() + 3 * output.numel() + weights))

    handles = [
        sub.register_forward_hook(hook)
        for mod in modules
        for sub in mod.modules()
        if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    try:
        with torch.inference_mode():
            run()
    finally:
        for h in handles:
            h.remove()
    return layers


def stage_layers(
    bundle: Bundle, width: int = 1280, height: int = 720, faces: int = 1
) -> dict[str, list[Layer]]:
    """Per stage, the layers of one frame with ``faces`` faces (counted on the CPU)."""
    from realtime.bench.gpu import _frame
    from realtime.live.crop import Octaves, to_tensor
    from realtime.live.detect import MTCNN
    from realtime.live.engines.backends import inference_module

    image = _frame(width, height)
    det = MTCNN()
    octaves = Octaves(to_tensor(image))
    boxes = det(octaves).boxes[:1]
    boxes = np.repeat(boxes, faces, 0) if len(boxes) else np.array([[0, 0, height / 2, height / 2]] * faces)
    nets = [det.pnet, det.rnet, det.onet]
    r = bundle.config.resolution
    model = inference_module(bundle).eval()
    crop_values = faces * 3 * r * r * (1 + 4 + 1)  # 4 bilinear taps read, the crop written, read by the net
    frame_values = width * height * (3 / 4 + 3 + 3 * 1.33)  # uint8 upload, float frame, its octaves
    n_vertices = len(bundle.layout.face_ind)
    return {
        "detect (tracking: O-Net check)": _hooked(nets, lambda: det.verify(octaves, boxes)),
        "detect (full detection)": _hooked(nets, lambda: det(Octaves(to_tensor(image)))),
        "upload + crop": [Layer(0.0, frame_values + crop_values)],
        "infer (folded PRNet)": _hooked([model], lambda: model(torch.zeros(faces, 3, r, r))),
        "decode (gather, affine)": [Layer(6.0 * faces * n_vertices, faces * n_vertices * (3 + 3 + 3))],
    }


def project(stages: dict[str, list[Layer]], gpu: GPU) -> dict[str, dict[str, float]]:
    out = {}
    for stage, layers in stages.items():
        flops = sum(la.flops for la in layers)
        nbytes = sum(la.values for la in layers) * gpu.bytes_per_value
        ms = sum(
            max(la.flops / (gpu.tflops * 1e12), la.values * gpu.bytes_per_value / (gpu.gbs * 1e9))
            for la in layers
        )
        launches = len(layers) * 2 if stage.startswith("detect") else 0  # conv + activation each
        out[stage] = {
            "gflops": flops / 1e9,
            "mbytes": nbytes / 1e6,
            "flops_per_byte": flops / max(nbytes, 1.0),
            "roofline_ms": 1000 * ms,
            "launch_floor_ms": launches * LAUNCH_US / 1000,
        }
    return out


def bench_roofline(log, bundle: Bundle | None = None) -> dict:
    """Projection for each GPU in GPUS, full model (random weights: FLOPs do not depend
    on values) and lite model, 1280x720, 1 and 4 faces."""
    from realtime.bench.model import random_bundle

    report: dict = {"assumptions": (__doc__ or "").partition("\n\n")[2].strip(), "projections": []}
    models = {"full": random_bundle(16, 256), "lite": bundle or load_bundle()}
    for label, b in models.items():
        for faces in (1, 4):
            log(f"roofline: counting {label} model, {faces} face(s)...")
            stages = stage_layers(b, faces=faces)
            for gpu in GPUS:
                per = project(stages, gpu)
                tracking = sum(
                    v["roofline_ms"] + v["launch_floor_ms"]
                    for k, v in per.items()
                    if k != "detect (full detection)"
                )
                report["projections"].append(
                    {
                        "model": label,
                        "faces": faces,
                        "gpu": gpu.name,
                        "stages": per,
                        "tracking_frame_ms": tracking,
                    }
                )
    return report


def markdown(report: dict) -> list[str]:
    lines = [
        "### Roofline projection (not a measurement), 1280x720",
        "",
        "| model | faces | GPU | stage | GFLOP | MB | FLOP/B | roofline ms | launch floor ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["projections"]:
        for stage, v in p["stages"].items():
            lines.append(
                f"| {p['model']} | {p['faces']} | {p['gpu']} | {stage} | {v['gflops']:.3f} | "
                f"{v['mbytes']:.1f} | {v['flops_per_byte']:.1f} | {v['roofline_ms']:.3f} | "
                f"{v['launch_floor_ms']:.3f} |"
            )
        lines.append(
            f"| {p['model']} | {p['faces']} | {p['gpu']} | **a tracked frame** | | | | "
            f"**{p['tracking_frame_ms']:.2f}** (**{1000 / p['tracking_frame_ms']:.0f} fps**) | |"
        )
    return lines + ["", report["assumptions"], ""]
