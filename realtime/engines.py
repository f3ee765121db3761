"""Inference engines: one interface, several backends (in the manner of 3DDFA_V2's
TDDFA / TDDFA_ONNX).

Every engine takes (B, 3, R, R) float32 RGB in [0, 1] (a torch tensor on any device)
and returns (B, 3, R, R) float32 numpy position maps in crop pixels, and has ``.name``
and ``.resolution``. Each is checked against eager fp32 (``compare``): position map
within 2e-3 of the sigmoid output (about 0.56 px at 256 px), landmarks within 0.5 px.

Backends:

* ``eager``: the PRNet module as trained, fp32: the reference.
* ``cpu-fast``: ``FoldedPRNet`` (batch norm folded into the convolutions, stride-1
  transposed convs rewritten as plain convs, the wide ones as Winograd F(4x4, 4x4)),
  channels_last, compiled by inductor with freezing so oneDNN weights are pre-packed
  once. fp32: bf16 misses the tolerance.
* ``cpu-bf16``: cpu-fast in bfloat16, on CPUs with native bf16 (avx512_bf16 / AMX):
  faster again, but its maps are off by ~1e-2, so ``auto`` never picks it.
* ``onnxruntime``: the folded model exported to ONNX and run by onnxruntime (only when
  ``onnx`` and ``onnxruntime`` are installed).
* ``cuda-fp16``: the folded model in half precision, torch.compile with CUDA graphs.
* ``tensorrt``: Torch-TensorRT FP16, the built engine cached on disk.

Compiled engines warm up at construction and print progress; inductor's compiled code
is cached under ``CACHE_DIR / "inductor"`` (TORCHINDUCTOR_CACHE_DIR, unless the user
set it), TensorRT engines under ``CACHE_DIR / "tensorrt"``, ONNX files under
``CACHE_DIR / "onnx"``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.model import PRNet
from realtime.types import UserError
from realtime.uv import MIRROR_68, UVLayout
from realtime.weights import Bundle

CACHE_DIR = Path(os.environ.get("PRNET_LIVE_CACHE", Path.home() / ".cache" / "prnet-live"))
#: Tolerances against eager fp32 (issue 3): sigmoid units and landmark pixels.
MAP_TOL = 2e-3
LANDMARK_TOL = 0.5
#: Preference order for ``backend="auto"``: fastest first, as measured by
#: ``python -m realtime.bench`` (docs/benchmarks.md).
AUTO_ORDER = {"cuda": ("tensorrt", "cuda-fp16", "eager"), "cpu": ("cpu-fast", "onnxruntime", "eager")}
BACKENDS = ("eager", "cpu-fast", "cpu-bf16", "onnxruntime", "cuda-fp16", "tensorrt")
#: Winograd F(4x4, 4x4) (cpu-fast): finite interpolation points (plus infinity),
#: small and exact in binary so fp32 error stays ~1e-5 relative; and the stride-1
#: decoder layers where it beats oneDNN's direct conv on the CPU: measured faster at
#: 256 ch x 16 px, 128 x 32 and 64 x 64 (the full model), slower below 64 channels
#: and at 512 x 8; untried shapes (the lite model's) keep the direct conv.
WINOGRAD_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5)
WINOGRAD_SHAPES = ((256, 16), (128, 32), (64, 64))  # (channels, feature-map side)

os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(CACHE_DIR / "inductor"))


class EngineError(UserError, RuntimeError):
    """A backend that cannot run here; the message says why in one line."""


def _log(msg: str) -> None:
    print(f"[engines] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- folding


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as y = a x + b."""
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return a, bn.bias - a * bn.running_mean


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    cout, cin, k, _ = weight.shape
    conv = nn.Conv2d(cin, cout, k, stride, padding, bias=bias is not None)
    conv.weight.data.copy_(weight)
    if bias is not None:
        conv.bias.data.copy_(bias)
    return conv


class _FoldedConv(nn.Module):
    """ConvBN with the norm folded in. TF 'SAME' for a 4x4 kernel is symmetric (1, 1)
    at stride 2, so it becomes the conv's own padding; at stride 1 it is (1, 2), an
    explicit pad."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, relu: bool):
        super().__init__()
        k = weight.shape[-1]
        self.pad = (1, 2, 1, 2) if k == 4 and stride == 1 else None
        self.conv = _conv(weight, bias, stride, 1 if k == 4 and stride == 2 else 0)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.pad(x, self.pad) if self.pad else x)
        return torch.relu(x) if self.relu else x


def _fold_convbn(m: nn.Module, relu: bool = True) -> _FoldedConv:
    w = m.conv.weight
    if m.bn is None:
        return _FoldedConv(w, None, m.stride, relu=False)
    a, b = _bn_affine(m.bn)
    return _FoldedConv(w * a[:, None, None, None], b, m.stride, relu)


class _FoldedBlock(nn.Module):
    """ResBlock: relu(bn(conv3(y) + short)) with bn's scale folded into conv3 and the
    shortcut conv (an identity shortcut keeps a per-channel scale)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        a, b = _bn_affine(block.bn)
        self.conv1 = _fold_convbn(block.conv1)
        self.conv2 = _fold_convbn(block.conv2)
        self.conv3 = _conv(block.conv3.conv.weight * a[:, None, None, None], b)
        if block.shortcut is None:
            self.short = None
            self.register_buffer("short_scale", a[None, :, None, None].clone())
        else:  # subsample + 1x1 conv == strided 1x1 conv (forward only, no crash here)
            self.short = _conv(block.shortcut.weight * a[:, None, None, None], None, block.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x * self.short_scale if self.short is None else self.short(x)
        return torch.relu(self.conv3(self.conv2(self.conv1(x))) + s)


def winograd_matrices(
    m: int, r: int, points: Iterable[float] = WINOGRAD_POINTS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Toom-Cook matrices (A^T, G, B^T) of Winograd F(m, r): for a tile d of m + r - 1
    inputs, the correlation with g is A^T [(G g) * (B^T d)].

    Built from polynomial multiplication evaluated at ``points`` and infinity: with
    V_k the (n, k) evaluation matrix, A^T = V_m^T, G = V_r, B^T = V_n^-T (float64).
    """
    pts = [float(p) for p in points][: m + r - 2]
    if len(pts) != m + r - 2:
        raise ValueError(f"F({m}, {r}) needs {m + r - 2} finite points")

    def vander(k: int) -> torch.Tensor:
        rows = [[p**j for j in range(k)] for p in pts] + [[0.0] * (k - 1) + [1.0]]
        return torch.tensor(rows, dtype=torch.float64)

    return vander(m).T, vander(r), torch.linalg.inv(vander(m + r - 1)).T


class _WinogradConv(nn.Module):
    """Stride-1 r x r convolution (+ bias) as Winograd F(m x m, r x r): per m x m output
    tile, (m + r - 1)^2 products instead of (m r)^2, i.e. 3.1x fewer multiplies for
    F(4x4, 4x4). The products are one batched matmul (n^2, tiles, Cin) @ (n^2, Cin,
    Cout); the input and output transforms are two einsums with the small constant
    matrices (as fast as hand-unrolled sums once compiled, and 5-8x quicker to
    compile). Pays off only with many channels (the transformed input is 2.25x the
    input), hence WINOGRAD_SHAPES. fp32 error ~1e-5 relative.

    ``pad`` is (before, after) as for F.pad; the output is (B, Cout, H, W) in
    channels_last memory.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, pad: tuple[int, int], m: int = 4):
        super().__init__()
        cout, cin, r, _ = weight.shape
        at, g, bt = winograd_matrices(m, r)
        self.m, self.n, self.pad = m, m + r - 1, pad
        u = torch.einsum("ij,ocjk,lk->ilco", g, weight.double(), g)  # G w G^T per (co, ci)
        self.register_buffer("u", u.reshape(self.n * self.n, cin, cout).float().contiguous())
        self.register_buffer("bias", bias.detach().clone())
        self.register_buffer("at", at.float())
        self.register_buffer("bt", bt.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n, (before, _) = self.m, self.n, self.pad
        b, c, h, w = x.shape
        th, tw = -(-h // m), -(-w // m)
        # pad so that th x tw tiles of n x n inputs (stride m) cover the image
        xp = F.pad(x, (before, tw * m + n - m - w - before, before, th * m + n - m - h - before))
        xu = xp.unfold(2, n, m).unfold(3, n, m)  # (B, C, th, tw, n rows, n cols), a view
        v = torch.einsum("ij,bcxyjk,lk->ilbxyc", self.bt, xu, self.bt).reshape(n * n, b * th * tw, c)
        p = torch.bmm(v, self.u).view(n, n, b, th, tw, -1)
        y = torch.einsum("ij,jkbxyo,lk->bxiylo", self.at, p, self.at)  # (B, th, m, tw, m, Cout)
        y = y.reshape(b, th * m, tw * m, -1)[:, :h, :w] + self.bias
        return y.permute(0, 3, 1, 2)


class _FoldedDeconv(nn.Module):
    """DeconvBN with the norm folded in.

    Stride 1: the SAME transposed conv (full, cropped by 1 at the start) equals a
    plain conv with the kernel flipped, in/out channels swapped and input padding
    (2 before, 1 after); oneDNN runs plain convs faster, and with ``winograd`` the
    wide ones (WINOGRAD_SHAPES) run as Winograd F(4x4, 4x4). Stride 2: the crop of
    1 on each side is exactly ConvTranspose2d(padding=1); oneDNN runs it as fast as
    a conv of equal FLOPs (the sub-pixel rewrite, ``subpixel_weight``, measured no
    faster: docs/benchmarks.md).
    """

    def __init__(self, m: nn.Module, out_scale: float | None, winograd: bool = False, side: int = 0):
        super().__init__()
        a, b = _bn_affine(m.bn)
        w = m.deconv.weight * a[None, :, None, None]  # (cin, cout, k, k)
        self.out_scale = out_scale
        self.pad: tuple[int, ...] | None = None
        if m.stride == 1:
            conv_w = w.transpose(0, 1).flip(2, 3)
            if winograd and (w.shape[0], side) in WINOGRAD_SHAPES:
                self.op: nn.Module = _WinogradConv(conv_w, b, (2, 1))
            else:
                self.op, self.pad = _conv(conv_w, b), (2, 1, 2, 1)
        else:
            cin, cout, k, _ = w.shape
            self.op = nn.ConvTranspose2d(cin, cout, k, m.stride, padding=1, bias=True)
            self.op.weight.data.copy_(w)
            self.op.bias.data.copy_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(F.pad(x, self.pad) if self.pad else x)
        if self.out_scale is not None:  # final layer: sigmoid, then crop pixels
            return torch.sigmoid(y) * self.out_scale
        return torch.relu(y)


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """Stride-2 4x4 SAME transposed conv as sub-pixel convolution: returns the (4 Cout,
    Cin, 3, 3) kernel K such that pixel_shuffle(conv2d(x, K, padding=1), 2) equals
    conv_transpose2d(x, weight, stride=2) cropped by 1 (DeconvBN).

    Output row 2i + r of the crop is full row 2i + r + 1 = 2q + k with input row q:
    r = 0 takes k = 3 from row i - 1 and k = 1 from row i; r = 1 takes k = 2 from row i
    and k = 0 from row i + 1. The 3x3 taps t = 0, 1, 2 read rows i - 1, i, i + 1;
    columns likewise. Kept for the record and its test: 2.25x the multiplies (5 of 9
    taps are zero), measured 2x slower than oneDNN's transposed conv.
    """
    cin, cout = weight.shape[:2]
    taps = ((3, 1, None), (None, 2, 0))  # parity r -> kernel index for tap t
    k = weight.new_zeros(cout, 2, 2, cin, 3, 3)  # channel c * 4 + ry * 2 + rx
    for ry in range(2):
        for rx in range(2):
            for ty, ky in enumerate(taps[ry]):
                for tx, kx in enumerate(taps[rx]):
                    if ky is not None and kx is not None:
                        k[:, ry, rx, :, ty, tx] = weight[:, :, ky, kx].T
    return k.reshape(4 * cout, cin, 3, 3)


class FoldedPRNet(nn.Module):
    """Inference-only PRNet: same function as ``PRNet.eval()`` times output_scale,
    with every batch norm folded away (27 fewer passes over the activations)."""

    def __init__(self, model: PRNet, out_scale: float, winograd: bool = False):
        super().__init__()
        with torch.no_grad():
            self.stem = _fold_convbn(model.conv)
            self.encoder = nn.Sequential(*[_FoldedBlock(b) for b in model.encoder])
            last, side, layers = len(model.decoder) - 1, model.config.resolution // 32, []
            for i, m in enumerate(model.decoder):
                side *= m.stride
                layers.append(_FoldedDeconv(m, out_scale if i == last else None, winograd, side))
            self.decoder = nn.Sequential(*layers)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(self.stem(x)))


# --------------------------------------------------------------------------- engines


class EagerEngine:
    """Plain fp32 PyTorch: the reference every other engine is checked against."""

    name = "eager"

    def __init__(self, bundle: Bundle, device: str = "cpu"):
        self.device = torch.device(device)
        self.resolution = bundle.config.resolution
        self.scale = bundle.config.output_scale
        self.model = bundle.build_model(self.device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        out = self.model(images.to(self.device, torch.float32))
        return (out.float() * self.scale).cpu().numpy()


class CpuFastEngine:
    """Folded model, channels_last, the wide stride-1 decoder convs as Winograd
    F(4x4, 4x4) (``winograd``, default on in fp32), inductor with freezing (weights
    constant-folded and pre-packed for oneDNN).

    Compiled twice: batch 1 and batch >= 2 (dynamic); ``warmup`` does both up front
    with progress, and inductor's on-disk cache makes later runs faster. ``bf16``
    runs the convolutions in bfloat16 (only on CPUs with native bf16); off by default
    because it misses the 2e-3 tolerance (see docs/benchmarks.md).
    """

    name = "cpu-fast"

    def __init__(
        self,
        bundle: Bundle,
        compile: bool = True,
        bf16: bool = False,
        channels_last: bool = True,
        winograd: bool | None = None,
        warmup: Iterable[int] = (1, 2),
    ):
        if bf16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise EngineError("this CPU has no native bf16 (avx512_bf16/AMX): use bf16=False")
        self.name = "cpu-bf16" if bf16 else "cpu-fast"
        self.resolution = bundle.config.resolution
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        winograd = not bf16 if winograd is None else winograd
        model = FoldedPRNet(bundle.build_model("cpu"), bundle.config.output_scale, winograd)
        self.model = model.to(dtype=self.dtype, memory_format=self.memory_format)
        self.compiled = torch.compile(self.model, dynamic=False) if compile else None
        self._seen: set[int] = set()
        if compile:
            self.warmup(warmup)

    def warmup(self, batch_sizes: Iterable[int]) -> None:
        for b in batch_sizes:
            self(torch.zeros(b, 3, self.resolution, self.resolution))

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        x = images.to("cpu", self.dtype).contiguous(memory_format=self.memory_format)
        if self.compiled is None:
            with torch.inference_mode():
                return self.model(x).float().numpy()
        # Two graphs cover every face count: batch 1, and batch >= 2 with a dynamic
        # batch dimension (as fast as static shapes here), so a second face joining
        # mid-session costs no compile after warm-up.
        kind = "1" if x.shape[0] == 1 else "2+"
        if x.shape[0] > 1:
            torch._dynamo.maybe_mark_dynamic(x, 0)
        first = kind not in self._seen
        if first:
            _log(
                f"{self.name}: compiling for batch {kind} at {self.resolution}px (once; cached in "
                f"{os.environ.get('TORCHINDUCTOR_CACHE_DIR')})..."
            )
            t0 = time.perf_counter()
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True), torch.inference_mode():
            out = self.compiled(x).float().contiguous().numpy()
        if first:
            self._seen.add(kind)
            _log(f"{self.name}: batch {kind} ready in {time.perf_counter() - t0:.1f}s")
        return out


def _versions_key(*parts: object) -> str:
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def export_onnx(bundle: Bundle, path: str | Path | None = None, opset: int = 17) -> Path:
    """Export the folded model (dynamic batch) to ONNX; needs the ``onnx`` package.
    Returns the file, reused when the same weights were exported before."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise EngineError("ONNX export needs the onnx package: pip install onnx") from None
    if path is None:
        key = _versions_key(bundle_digest(bundle), torch.__version__, opset)
        path = CACHE_DIR / "onnx" / f"prnet_s{bundle.config.size}_r{bundle.config.resolution}_{key}.onnx"
    path = Path(path)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model = FoldedPRNet(bundle.build_model("cpu"), bundle.config.output_scale)
    r = bundle.config.resolution
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model,
        (torch.rand(1, 3, r, r),),
        str(tmp),
        dynamo=False,
        opset_version=opset,
        input_names=["images"],
        output_names=["maps"],
        dynamic_axes={"images": {0: "batch"}, "maps": {0: "batch"}},
    )
    tmp.replace(path)
    return path


class OnnxRuntimeEngine:
    """The folded model as ONNX, run by onnxruntime (CPU, or CUDA when available)."""

    name = "onnxruntime"

    def __init__(self, bundle: Bundle, device: str = "cpu"):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineError("onnxruntime is not installed (pip install onnxruntime)") from None
        self.resolution = bundle.config.resolution
        path = export_onnx(bundle)
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EngineError("onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), opts, providers=providers)

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        x = images.detach().to("cpu", torch.float32).contiguous().numpy()
        return self.session.run(["maps"], {"images": x})[0]


def _need_cuda(device: str) -> torch.device:
    if not device.startswith("cuda"):
        raise EngineError("needs device='cuda'")
    if not torch.cuda.is_available():
        raise EngineError(
            f"no CUDA GPU (torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'})"
        )
    return torch.device(device)


class CudaFp16Engine:
    """Folded model in fp16, channels_last, torch.compile(mode="reduce-overhead"):
    CUDA graphs replay the whole network as one launch. One upload (from pinned
    memory when the input is on the CPU) and one read-back per call."""

    name = "cuda-fp16"

    def __init__(self, bundle: Bundle, device: str = "cuda", warmup: Iterable[int] = (1,)):
        self.device = _need_cuda(device)
        self.resolution = bundle.config.resolution
        model = FoldedPRNet(bundle.build_model("cpu"), bundle.config.output_scale)
        self.model = model.to(self.device, torch.half, memory_format=torch.channels_last)
        self.compiled = torch.compile(self.model, mode="reduce-overhead", dynamic=False)
        self._seen: set[int] = set()
        for b in warmup:
            self(torch.zeros(b, 3, self.resolution, self.resolution))

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        if images.device.type == "cpu" and not images.is_pinned():
            images = images.pin_memory()
        x = images.to(self.device, non_blocking=True).half().contiguous(memory_format=torch.channels_last)
        b = x.shape[0]
        if b not in self._seen:
            _log(f"cuda-fp16: compiling + capturing CUDA graph for batch {b} (once)...")
            t0 = time.perf_counter()
            with torch.inference_mode():
                for _ in range(3):  # cudagraph trees record on the 2nd/3rd call
                    self.compiled(x)
            torch.cuda.synchronize()
            self._seen.add(b)
            _log(f"cuda-fp16: batch {b} ready in {time.perf_counter() - t0:.1f}s")
        with torch.inference_mode():
            out = self.compiled(x).float()
        return out.cpu().numpy()


class TensorRTEngine:
    """Torch-TensorRT FP16 (dynamo IR). The built engine is saved as an
    ExportedProgram under CACHE_DIR/tensorrt, keyed by GPU name, input shape, the
    weights and the torch / torch_tensorrt / TensorRT versions; later runs load it
    instead of rebuilding. ``compile_s`` records the build (or load) time."""

    name = "tensorrt"

    def __init__(self, bundle: Bundle, device: str = "cuda", warmup: Iterable[int] = (1,)):
        self.device = _need_cuda(device)
        try:
            import tensorrt
            import torch_tensorrt
        except ImportError as e:
            raise EngineError(
                f"torch-tensorrt / TensorRT not importable ({e}): pip install torch-tensorrt"
            ) from None
        self.resolution = bundle.config.resolution
        self._trt, self._bundle = torch_tensorrt, bundle
        self._versions = (
            torch.__version__,
            torch_tensorrt.__version__,
            tensorrt.__version__,
            torch.cuda.get_device_name(self.device),
        )
        self.modules: dict[int, Callable] = {}
        self.compile_s: dict[int, float] = {}
        for b in warmup:  # an engine per batch size, built (or loaded) up front
            self._build(b)

    def _build(self, b: int) -> Callable:
        r = self.resolution
        key = _versions_key(bundle_digest(self._bundle), b, r, *self._versions)
        gpu = "".join(c if c.isalnum() else "_" for c in self._versions[-1])
        path = CACHE_DIR / "tensorrt" / f"prnet_s{self._bundle.config.size}_b{b}_r{r}_{gpu}_{key}.ep"
        example = [torch.zeros(b, 3, r, r, device=self.device, dtype=torch.half)]
        t0 = time.perf_counter()
        if path.is_file():
            _log(f"tensorrt: loading cached engine {path}")
            module = torch.export.load(str(path)).module()
        else:
            _log(f"tensorrt: building FP16 engine for batch {b} at {r}px (once; minutes)...")
            model = FoldedPRNet(self._bundle.build_model("cpu"), self._bundle.config.output_scale)
            model = model.to(self.device, torch.half)
            module = self._trt.compile(model, ir="dynamo", inputs=example, enabled_precisions={torch.half})
            path.parent.mkdir(parents=True, exist_ok=True)
            self._trt.save(module, str(path), inputs=example)
        self.compile_s[b] = time.perf_counter() - t0
        _log(f"tensorrt: batch {b} ready in {self.compile_s[b]:.1f}s")
        self.modules[b] = module
        return module

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        b = images.shape[0]
        module = self.modules.get(b) or self._build(b)
        if images.device.type == "cpu" and not images.is_pinned():
            images = images.pin_memory()
        x = images.to(self.device, non_blocking=True).half()
        with torch.inference_mode():
            out = module(x)
        return out.float().cpu().numpy()


# --------------------------------------------------------------------------- selection


class MirrorAveraged:
    """Any engine, run on each face as seen and mirrored, the two maps averaged.

    The network's errors on a face and on its mirror image are largely independent, so
    their mean is markedly closer (the shipped lite model: 4.56 -> 4.30 % balanced NME on
    AFLW2000-3D) and steadier, for twice the compute in one batched call. PRNet's UV
    layout is mirror-symmetric (column c <-> R - 1 - c), so the mirror's map flipped
    left-right, x reflected, is a map of the face as seen; the 68 landmark pixels take
    their partner landmark's value exactly (``MIRROR_68``), and the few face pixels
    whose mirror pixel is off the face keep the direct prediction."""

    def __init__(self, engine, layout: UVLayout):
        self.inner = engine
        self.name = f"{engine.name}+mirror"
        self.resolution = engine.resolution
        mirrored = "mirror: each face also runs mirrored, the two maps averaged"
        self.reasons = [*getattr(engine, "reasons", []), mirrored]
        self._kpt = layout.kpt_ind
        self._partner = layout.kpt_ind[:, MIRROR_68]
        self._lonely = layout.face_mask & ~layout.face_mask[:, ::-1]

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        b = images.shape[0]
        maps = self.inner(torch.cat([images, images.flip(-1)]))
        own, seen = maps[:b], maps[b:]
        back = seen[..., ::-1].copy()
        back[:, :, self._kpt[1], self._kpt[0]] = seen[:, :, self._partner[1], self._partner[0]]
        back[:, 0] = (self.resolution - 1) - back[:, 0]
        back[:, :, self._lonely] = own[:, :, self._lonely]
        back += own
        back *= 0.5  # in place: the averaged map is the one array this call allocates
        return back


def bundle_digest(bundle: Bundle) -> str:
    """Short content hash of the weights (cache keys must change when weights do)."""
    h = hashlib.sha256(repr(bundle.config).encode())
    for k in sorted(bundle.state_dict):
        h.update(bundle.state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _make(bundle: Bundle, backend: str, device: str, **kw: object):
    if backend == "eager":
        return EagerEngine(bundle, device)
    if backend == "cpu-fast":
        if device != "cpu":
            raise EngineError("CPU only (device='cpu')")
        return CpuFastEngine(bundle, **kw)
    if backend == "cpu-bf16":
        if device != "cpu":
            raise EngineError("CPU only (device='cpu')")
        return CpuFastEngine(bundle, bf16=True, **kw)
    if backend == "onnxruntime":
        return OnnxRuntimeEngine(bundle, device)
    if backend == "cuda-fp16":
        return CudaFp16Engine(bundle, device, **kw)
    if backend == "tensorrt":
        return TensorRTEngine(bundle, device, **kw)
    raise EngineError(f"unknown backend {backend!r}: choose one of auto, {', '.join(BACKENDS)}")


def create_engine(
    bundle: Bundle,
    backend: str = "auto",
    device: str = "cpu",
    verbose: bool = False,
    mirror: bool = False,
    **kw: object,
):
    """Build an engine. ``backend="auto"``: on a GPU, the first of AUTO_ORDER that
    builds (TensorRT, then CUDA FP16: the order is clear there). On a CPU, every
    candidate that builds is timed on this model and the fastest kept, because the
    winner depends on the model and the CPU (here onnxruntime runs the lite model
    1.5-2x faster than inductor, which wins on the full one). ``engine.reasons`` lists
    the choice and why each other was not taken (printed when ``verbose``). ``mirror``
    wraps the result in ``MirrorAveraged``, whose calls are twice the batch: the
    compiled engines then warm up for, and ``auto`` times, batch 2. Extra keywords go
    to the engine (e.g. ``warmup=(1, 4)`` for the compiled ones)."""
    if mirror:
        kw.setdefault("warmup", (2,))
    if backend != "auto":
        engine = _make(bundle, backend, device, **kw)
        engine.reasons = [f"{backend}: chosen explicitly"]
        return MirrorAveraged(engine, bundle.layout) if mirror else engine
    kind = "cuda" if device.startswith("cuda") else "cpu"
    reasons: list[str] = []
    built: list = []
    for name in AUTO_ORDER[kind]:
        if built and (kind == "cuda" or name == "eager"):
            break  # the slower fallbacks are only needed when nothing else built
        try:
            built.append(_make(bundle, name, device, **(kw if name != "eager" else {})))
        except EngineError as e:
            reasons.append(f"{name}: skipped: {e}")
        except Exception as e:  # a compiler missing or failing must not stop the app
            reasons.append(f"{name}: skipped: failed to build ({type(e).__name__}: {str(e)[:200]})")
    if not built:
        raise EngineError("no backend could be built: " + "; ".join(reasons))
    if len(built) == 1:
        engine = built[0]
        reasons.append(f"{engine.name}: chosen (fastest available on {kind})")
    else:
        batch = 2 if mirror else 1
        times = {e.name: time_engine(e, batch=batch) for e in built}
        engine = min(built, key=lambda e: times[e.name])
        for e in built:
            verdict = "chosen, fastest measured" if e is engine else "built, slower here"
            reasons.append(f"{e.name}: {verdict} ({times[e.name]:.1f} ms per call at batch {batch})")
    engine.reasons = reasons
    if mirror:
        engine = MirrorAveraged(engine, bundle.layout)
    if verbose:
        for line in engine.reasons:
            _log(line)
    return engine


def time_engine(engine, rounds: int = 8, batch: int = 1) -> float:
    """Median ms of a call (after two untimed ones), on a real-sized input."""
    r = engine.resolution
    x = torch.rand(batch, 3, r, r)
    times = []
    for i in range(rounds + 2):
        t0 = time.perf_counter()
        engine(x)
        if i >= 2:
            times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def available_backends(device: str = "cpu") -> dict[str, str | None]:
    """Backend -> None if it can be built here, else the reason it cannot (cheap
    checks only: imports and hardware, no compilation)."""
    out: dict[str, str | None] = {"eager": None}
    cuda = torch.cuda.is_available()
    out["cpu-fast"] = None if _compiler_present() else "no C++ compiler for inductor (install g++)"
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        out["onnxruntime"] = None
    except ImportError as e:
        out["onnxruntime"] = f"not installed ({e.name}): pip install onnx onnxruntime"
    out["cuda-fp16"] = None if cuda else f"no CUDA GPU (torch {torch.__version__})"
    if not cuda:
        out["tensorrt"] = "no CUDA GPU"
    else:
        try:
            import tensorrt  # noqa: F401
            import torch_tensorrt  # noqa: F401

            out["tensorrt"] = None
        except ImportError as e:
            out["tensorrt"] = f"torch-tensorrt / TensorRT not importable ({e.name})"
    return out


def _compiler_present() -> bool:
    import shutil

    return any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++", "c++"))


def compare(reference: np.ndarray, maps: np.ndarray, bundle: Bundle) -> dict[str, float]:
    """Errors of ``maps`` against the eager ``reference`` (both crop px): max abs
    over the whole map in sigmoid units, and max landmark (x, y, z) error in px."""
    scale = bundle.config.output_scale
    idx = bundle.layout.kpt_ind  # (2, 68) (col, row)
    lm_ref = reference[:, :, idx[1], idx[0]]
    lm = maps[:, :, idx[1], idx[0]]
    return {
        "map_max_abs": float(np.abs(maps - reference).max() / scale),
        "landmark_max_px": float(np.abs(lm - lm_ref).max()),
    }


def within_tolerance(err: dict[str, float]) -> bool:
    return err["map_max_abs"] <= MAP_TOL and err["landmark_max_px"] <= LANDMARK_TOL


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
