"""ONNX: the folded model exported once (cached under ``CACHE / "onnx"``) and run by
onnxruntime: ``onnxruntime`` (fp32, CPU or CUDA) and ``onnxruntime-int8`` (the
quantised model realtime.export.quantize builds offline); ``ort_session`` holds the
options every onnxruntime network here shares (the visibility network's too)."""

from __future__ import annotations

from pathlib import Path

import torch

from realtime.core.paths import CACHE, WEIGHTS, Traversable
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


def ort_session(path: str | Path | bytes, device: str = "cpu", threads: int | None = None):
    """An onnxruntime session on ``path`` (a file, or a model's bytes: one shipped in
    the package) on the CPU, or CUDA first for a cuda device, with the options every
    onnxruntime engine shares, so the fp32 and int8 engines are timed and run alike;
    ``threads`` defaults to torch's count at the time."""
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
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, opts, providers=providers)


class OnnxRuntimeEngine(Engine):
    """The folded model as ONNX, run by onnxruntime (CPU, or CUDA when available). A
    bundle with heads is exported with their outputs beside the maps, so ``run_all``
    costs one call, not one per head."""

    name = "onnxruntime"

    def __init__(self, bundle: Bundle, device: str = "cpu", path: Path | bytes | None = None):
        """``path``: another ONNX model of the bundle with the same outputs (int8), a
        file or its bytes."""
        super().__init__(bundle)
        self.heads = head_names(bundle)
        self.session = ort_session(path or export_onnx(bundle, heads=True), device)

    def forward_all(self, images: torch.Tensor) -> EngineOutput:
        x = images.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run(["maps", *self.heads], {"images": x})
        return engine_output(out if self.heads else out[0], self.heads)


#: The int8 recipe (realtime.export.quantize): part of the cache key, and the metadata
#: key under which an int8 model records the digest of the weights it was made from.
INT8_RECIPE = "int8-waist-v3"
DIGEST_KEY = "prnet_live.bundle_digest"


def int8_model_path(bundle: Bundle) -> Path:
    """Where realtime.export.quantize leaves the int8 model of ``bundle`` (the weights
    and the library versions in the name: another of either needs another build)."""
    import onnxruntime

    key = versions_key(bundle_digest(bundle), torch.__version__, onnxruntime.__version__, INT8_RECIPE)
    return CACHE / "onnx" / f"{model_tag(bundle)}_int8_{key}.onnx"


def shipped_int8(bundle: Bundle) -> Traversable | None:
    """The int8 model shipped beside ``bundle``'s file (``NAME_int8.onnx`` next to
    ``NAME.pt``: built by ``python -m realtime.export.quantize --ship``, so that users
    without the training crops get it), or None."""
    if bundle.path is None:
        return None
    folder = bundle.path.parent if isinstance(bundle.path, Path) else WEIGHTS
    twin = folder / f"{Path(bundle.path.name).stem}_int8.onnx"
    return twin if twin.is_file() else None


class OnnxRuntimeInt8Engine(OnnxRuntimeEngine):
    """The int8 model (static QDQ quantisation of the folded network's narrow middle)
    run with the fp32 engine's session options and calls. CPU only: the int8 kernels
    are the point. The model is the one built here by ``python -m
    realtime.export.quantize`` (cached), else the one shipped beside the weights; either
    carries the digest of the weights it was made from, and one made from other weights
    is refused (a retrained bundle must not run its predecessor's network)."""

    name = "onnxruntime-int8"
    exact = False  # near fp32, not equal: its landmarks are about 0.13 px from fp32's

    def __init__(self, bundle: Bundle, device: str = "cpu"):
        if device != "cpu":
            raise EngineError("CPU only (device='cpu')")
        try:
            path = int8_model_path(bundle)
        except ImportError:
            raise EngineError("onnxruntime is not installed (pip install onnxruntime)") from None
        shipped = None if path.is_file() else shipped_int8(bundle)
        if not path.is_file() and shipped is None:
            weights = f" --weights {bundle.path}" if bundle.path is not None else ""
            raise EngineError(
                "no int8 model for these weights and libraries yet: build it once with "
                f"`python -m realtime.export.quantize{weights}` (reads the training crops)"
            )
        # its QDQ model keeps the heads' outputs (in fp32) beside the maps
        super().__init__(bundle, device, path if shipped is None else shipped.read_bytes())
        made_from = self.session.get_modelmeta().custom_metadata_map.get(DIGEST_KEY)
        if made_from != bundle_digest(bundle):
            where = path if shipped is None else shipped
            raise EngineError(
                f"the int8 model {where} was made from other weights ({made_from or 'unknown'}, these are "
                f"{bundle_digest(bundle)}): build it again with `python -m realtime.export.quantize --force`"
            )
