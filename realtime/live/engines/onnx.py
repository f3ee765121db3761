"""ONNX: the folded model exported once (cached under ``CACHE / "onnx"``) and run by
onnxruntime: ``onnxruntime`` (fp32, CPU or CUDA) and ``onnxruntime-int8`` (the
quantised model realtime.export.quantize builds offline); ``ort_session`` holds the
options every onnxruntime network here shares (the visibility network's too)."""

from __future__ import annotations

from pathlib import Path

import torch

from realtime.core.paths import CACHE
from realtime.core.weights import Bundle
from realtime.live.engines.backends import (
    Engine,
    EngineError,
    EngineOutput,
    bundle_digest,
    engine_output,
    head_names,
    inference_module,
    model_tag,
    versions_key,
)


def export_onnx(bundle: Bundle, path: str | Path | None = None, opset: int = 17, heads: bool = False) -> Path:
    """Export the folded model (dynamic batch) to ONNX; needs the ``onnx`` package.
    Returns the file, reused when the same weights were exported before. ``heads``:
    after "maps", an output per head the bundle has (``head_names``: "face_logit" (B,),
    "lids" (B, 2), "visibility" (B, 1, R/2, R/2) logits)."""
    names = head_names(bundle) if heads else ()
    if path is None:
        key = versions_key(bundle_digest(bundle), torch.__version__, opset, names)
        path = CACHE / "onnx" / f"{model_tag(bundle)}{'_heads' if names else ''}_{key}.onnx"
    path = Path(path)
    if path.is_file():
        return path
    model = inference_module(bundle, heads=bool(names))
    return export_module(model, bundle.config.resolution, path, ("maps", *names), opset)


def export_module(
    module: torch.nn.Module, resolution: int, path: Path, outputs: tuple[str, ...], opset: int = 17
) -> Path:
    """Export ``module`` (input "images" (B, 3, R, R), an output per name in
    ``outputs``) to ``path`` with a dynamic batch, unless the file is there; written
    aside and moved, so an interrupted export leaves no half file for the next start to
    trust."""
    if path.is_file():
        return path
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise EngineError("ONNX export needs the onnx package: pip install onnx") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        module,
        (torch.rand(1, 3, resolution, resolution),),
        str(tmp),
        dynamo=False,
        opset_version=opset,
        input_names=["images"],
        output_names=list(outputs),
        dynamic_axes={"images": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
    )
    tmp.replace(path)
    return path


def ort_session(path: str | Path, device: str = "cpu", threads: int | None = None):
    """An onnxruntime session on ``path`` (CPU, or CUDA first for a cuda device) with
    the options every onnxruntime engine shares, so the fp32 and int8 engines are timed
    and run alike; ``threads`` defaults to torch's count at the time."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EngineError("onnxruntime is not installed (pip install onnxruntime)") from None
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise EngineError("onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    # Idle threads sleep instead of spinning: in the live loop the capture and render
    # threads share the cores, and spinning workers starved them (2-core Xeon, loaded:
    # 15 ms a call without spinning, 21-24 ms with).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=providers)


class OnnxRuntimeEngine(Engine):
    """The folded model as ONNX, run by onnxruntime (CPU, or CUDA when available). A
    bundle with heads is exported with their outputs beside the maps, so ``run_all``
    costs one call, not one per head."""

    name = "onnxruntime"

    def __init__(self, bundle: Bundle, device: str = "cpu", path: Path | None = None):
        """``path``: another ONNX model of the bundle with the same outputs (int8)."""
        super().__init__(bundle)
        self.heads = head_names(bundle)
        self.session = ort_session(path or export_onnx(bundle, heads=True), device)

    def forward_all(self, images: torch.Tensor) -> EngineOutput:
        x = images.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run(["maps", *self.heads], {"images": x})
        return engine_output(out if self.heads else out[0], self.heads)


def int8_model_path(bundle: Bundle) -> Path:
    """Where realtime.export.quantize leaves the int8 model of ``bundle`` (the weights
    and the library versions in the name: another of either needs another build)."""
    import onnxruntime

    key = versions_key(bundle_digest(bundle), torch.__version__, onnxruntime.__version__, "int8-waist-v2")
    return CACHE / "onnx" / f"{model_tag(bundle)}_int8_{key}.onnx"


class OnnxRuntimeInt8Engine(OnnxRuntimeEngine):
    """The int8 model (static QDQ quantisation of the folded network's narrow middle,
    built offline by ``python -m realtime.export.quantize``) run with the fp32 engine's
    session options and calls. CPU only: the int8 kernels are the point."""

    name = "onnxruntime-int8"

    def __init__(self, bundle: Bundle, device: str = "cpu"):
        if device != "cpu":
            raise EngineError("CPU only (device='cpu')")
        try:
            path = int8_model_path(bundle)
        except ImportError:
            raise EngineError("onnxruntime is not installed (pip install onnxruntime)") from None
        if not path.is_file():
            weights = f" --weights {bundle.path}" if bundle.path is not None else ""
            raise EngineError(
                "no int8 model for these weights and libraries yet: build it once with "
                f"`python -m realtime.export.quantize{weights}` (reads the training crops)"
            )
        # its QDQ model keeps the face head's logit (in fp32) as the second output
        super().__init__(bundle, device, path)
