"""Import the official PRNet weights (a TF1 checkpoint) and UV data into a bundle.

The checkpoint is read directly, without TensorFlow: a TF1 "tensor bundle" is an
uncompressed LevelDB-style table (``.index``) mapping each variable name to a small
protobuf that gives dtype, shape and a byte range in ``.data-00000-of-00001``, which
holds the raw little-endian arrays. Reading it ourselves keeps a 1.3 GB dependency
out of the one command users run once; TensorFlow is only needed by the parity test
that proves this reader, the name mapping and our padding against the original graph.

Names follow PRNet's ``predictor.py`` (tf_slim default scopes), e.g.
``resfcn256/resBlock_2/Conv_1/BatchNorm/gamma`` -> ``encoder.2.conv2.bn.weight``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.core.model import DECODER, ENCODER, PRNet, PRNetConfig
from realtime.core.uv import UVLayout, grid_triangles
from realtime.core.weights import Bundle, BundleError, save_bundle

CHECKPOINT = Path("Data/net-data/256_256_resfcn256_weight")
UV_DATA = Path("Data/uv-data")
ROOT = "resfcn256"
CONFIG = PRNetConfig(size=16, resolution=256)
#: Optimizer state in the released checkpoint (Adam slots and beta powers): not weights.
OPTIMIZER_MARKERS = ("/Adam", "beta1_power", "beta2_power", "global_step")
_TABLE_MAGIC = 0xDB4775248B80FB57
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16}
_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


@dataclass(frozen=True)
class TensorEntry:
    """Where one variable lives in the checkpoint's data shards."""

    dtype: type
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


# --- checkpoint reading ---------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _proto_fields(buf: bytes) -> dict[int, list]:
    """Protobuf wire format -> {field number: [varint ints or raw bytes]}."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        wire = tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + n], pos + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(tag >> 3, []).append(value)
    return fields


def _block_entries(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one table block (keys are prefix-compressed)."""
    if data[offset + size] != 0:
        raise ValueError("compressed checkpoint index blocks are not supported")
    block = data[offset : offset + size]
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        n_value, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + n_value]))
        pos += n_value
    return entries


def read_index(path: str | Path) -> dict[str, TensorEntry]:
    """Variable name -> TensorEntry, from a TF checkpoint ``.index`` file."""
    data = Path(path).read_bytes()
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
        raise ValueError("not a TensorFlow checkpoint index (bad table footer)")
    pos = len(data) - 48
    _, pos = _varint(data, pos)  # metaindex handle: unused
    _, pos = _varint(data, pos)
    index_off, pos = _varint(data, pos)
    index_size, pos = _varint(data, pos)
    out = {}
    for _, handle in _block_entries(data, index_off, index_size):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(data, off, size):
            if not key:  # the header entry (BundleHeaderProto)
                continue
            f = _proto_fields(value)
            dims = _proto_fields(f[2][0]).get(2, []) if 2 in f else []
            shape = tuple(_proto_fields(d).get(1, [0])[0] for d in dims)
            if 7 in f:
                raise ValueError(f"partitioned variable {key.decode()} is not supported")
            out[key.decode()] = TensorEntry(
                _DTYPES.get(f.get(1, [0])[0], object), shape,
                f.get(3, [0])[0], f.get(4, [0])[0], f.get(5, [0])[0],
            )  # fmt: skip
    return out


def read_checkpoint(prefix: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    """The named float variables of checkpoint ``prefix`` as numpy arrays."""
    prefix = Path(prefix)
    index = read_index(f"{prefix}.index")
    shards = sorted(prefix.parent.glob(f"{prefix.name}.data-*-of-*"))
    out = {}
    for name in names:
        e = index[name]
        if e.dtype is object or e.shard >= len(shards):
            raise ValueError(f"variable {name} has an unsupported dtype or missing data shard")
        count = int(np.prod(e.shape))
        if count * np.dtype(e.dtype).itemsize != e.size:
            raise ValueError(f"variable {name}: {e.size} bytes for shape {e.shape}")
        arr = np.fromfile(shards[e.shard], np.dtype(e.dtype).newbyteorder("<"), count, offset=e.offset)
        if arr.size != count:
            raise ValueError(f"data shard {shards[e.shard].name} is truncated at {name}")
        out[name] = arr.reshape(e.shape)
    return out


# --- name mapping ---------------------------------------------------------------------


def _scope(base: str, i: int) -> str:
    return f"{ROOT}/{base}" + (f"_{i}" if i else "")


def name_map(config: PRNetConfig = CONFIG) -> dict[str, str]:
    """Our state-dict key -> TF variable name, for every learned tensor and statistic."""
    m: dict[str, str] = {}

    def conv(ours: str, tf: str, bn: bool = True) -> None:
        m[f"{ours}.conv.weight"] = f"{tf}/weights"
        if bn:
            m.update({f"{ours}.bn.{k}": f"{tf}/BatchNorm/{v}" for k, v in _BN.items()})

    conv("conv", f"{ROOT}/Conv")
    cin = config.size
    for i, (mult, stride) in enumerate(ENCODER):
        scope, ours = _scope("resBlock", i), f"encoder.{i}"
        if stride != 1 or cin != config.size * mult:
            m[f"{ours}.shortcut.weight"] = f"{scope}/shortcut/weights"
        conv(f"{ours}.conv1", f"{scope}/Conv")
        conv(f"{ours}.conv2", f"{scope}/Conv_1")
        conv(f"{ours}.conv3", f"{scope}/Conv_2", bn=False)
        m.update({f"{ours}.bn.{k}": f"{scope}/BatchNorm/{v}" for k, v in _BN.items()})
        cin = config.size * mult
    for i in range(len(DECODER)):
        scope, ours = _scope("Conv2d_transpose", i), f"decoder.{i}"
        m[f"{ours}.deconv.weight"] = f"{scope}/weights"
        m.update({f"{ours}.bn.{k}": f"{scope}/BatchNorm/{v}" for k, v in _BN.items()})
    return m


def is_optimizer_variable(name: str) -> bool:
    return any(marker in name for marker in OPTIMIZER_MARKERS)


def convert(tf_vars: dict[str, np.ndarray], config: PRNetConfig = CONFIG) -> dict[str, torch.Tensor]:
    """TF arrays -> our float32 state dict. Kernels go (kh, kw, a, b) -> (b, a, kh, kw):
    conv2d's (kh, kw, in, out) becomes Conv2d's (out, in, ...), and conv2d_transpose's
    (kh, kw, out, in) becomes ConvTranspose2d's (in, out, ...); neither flips the kernel."""
    expected, names = PRNet(config).state_dict(), name_map(config)
    state = {}
    for key, ref in expected.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros_like(ref)
            continue
        value = np.asarray(tf_vars[names[key]], np.float32)
        if value.ndim == 4:
            value = value.transpose(3, 2, 0, 1)
        if tuple(value.shape) != tuple(ref.shape):
            raise BundleError(
                f"checkpoint variable {names[key]} has shape {value.shape}, "
                f"expected {tuple(ref.shape)}: is this PRNet's resfcn256 checkpoint?"
            )
        state[key] = torch.from_numpy(np.ascontiguousarray(value))
    return state


# --- UV layout ------------------------------------------------------------------------


def load_layout(uv_dir: str | Path) -> UVLayout:
    """PRNet's own 256 px layout from ``Data/uv-data``. Its face pixels (face_ind.txt,
    sorted, row-major) are exactly our face-mask order, so canonical_vertices.npy lines
    up row for row; triangles.txt, when present, indexes the same order."""
    uv_dir = Path(uv_dir)
    res = CONFIG.resolution
    face_ind = np.loadtxt(uv_dir / "face_ind.txt").astype(np.int64)
    face_mask = np.zeros(res * res, bool)
    face_mask[face_ind] = True
    face_mask = face_mask.reshape(res, res)
    if not np.array_equal(np.flatnonzero(face_mask), face_ind):
        raise BundleError(
            f"{uv_dir / 'face_ind.txt'} is not a sorted list of distinct pixels: "
            "use the file from the PRNet repository"
        )
    kpt_ind = np.loadtxt(uv_dir / "uv_kpt_ind.txt").astype(np.int64).reshape(2, 68)
    weight = cv2.imread(str(uv_dir / "uv_weight_mask.png"), cv2.IMREAD_GRAYSCALE)
    if weight is None or weight.shape != (res, res):
        raise BundleError(f"{uv_dir / 'uv_weight_mask.png'} is missing or not {res}x{res}")
    canonical = np.load(uv_dir / "canonical_vertices.npy").astype(np.float32)
    if canonical.shape != (len(face_ind), 3):
        raise BundleError(
            f"canonical_vertices.npy has shape {canonical.shape}, expected "
            f"({len(face_ind)}, 3) to match face_ind.txt"
        )
    tri_path = uv_dir / "triangles.txt"
    triangles = (
        np.loadtxt(tri_path).astype(np.int32).reshape(-1, 3)
        if tri_path.is_file()
        else grid_triangles(face_mask)
    )
    if triangles.size == 0 or triangles.min() < 0 or triangles.max() >= len(face_ind):
        raise BundleError(f"{tri_path} does not index the {len(face_ind)} face pixels of face_ind.txt")
    if kpt_ind.min() < 0 or kpt_ind.max() >= res:
        raise BundleError(f"{uv_dir / 'uv_kpt_ind.txt'} has landmarks outside the {res}x{res} map")
    return UVLayout(
        resolution=res,
        kpt_ind=kpt_ind,
        face_mask=face_mask,
        weight_mask=(weight.astype(np.float32) * (16.0 / 255.0)),
        triangles=triangles,
        canonical=canonical,
    )


# --- the command ----------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def import_prnet(checkout: str | Path, out: str | Path) -> Path:
    """Convert a PRNet checkout (Data/net-data + Data/uv-data) into a float32 bundle."""
    checkout = Path(checkout)
    prefix, uv_dir = checkout / CHECKPOINT, checkout / UV_DATA
    need = [Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")]
    need += [
        uv_dir / n for n in ("face_ind.txt", "uv_kpt_ind.txt", "uv_weight_mask.png", "canonical_vertices.npy")
    ]
    missing = [str(p.relative_to(checkout)) for p in need if not p.is_file()]
    if missing:
        raise BundleError(
            f"{checkout} is not a complete PRNet checkout: missing {', '.join(missing)} "
            "(get the weights from the PRNet README's download link into Data/net-data)"
        )
    try:
        index = read_index(need[0])
        mapping = name_map()
        absent = sorted(set(mapping.values()) - set(index))
        if absent:
            raise BundleError(
                f"checkpoint {prefix} lacks {len(absent)} PRNet variables (first: "
                f"{absent[0]}): is this the resfcn256 checkpoint?"
            )
        state = convert(read_checkpoint(prefix, sorted(set(mapping.values()))))
        layout = load_layout(uv_dir)
    except BundleError:
        raise
    except (ValueError, OSError) as e:
        raise BundleError(f"cannot read PRNet checkout {checkout}: {e}") from None
    unused = sorted(n for n in index if n not in set(mapping.values()) and not is_optimizer_variable(n))
    provenance = {
        "source": "PRNet official weights (Feng et al. 2018, github.com/YadiraF/PRNet)",
        "checkpoint": str(CHECKPOINT),
        "checkpoint_data_sha256": _sha256(need[1]),
        "imported_by": "realtime.export.tf_import",
        "license": "see realtime/weights/MODEL_CARD.md",
        "variables": len(mapping),
        "ignored_non_optimizer_variables": unused,
        "face_pixels": int(layout.face_mask.sum()),
        "triangles": "Data/uv-data/triangles.txt"
        if (uv_dir / "triangles.txt").is_file()
        else "generated grid over the face mask",
    }
    return save_bundle(Bundle(CONFIG, state, layout, provenance), out, dtype=torch.float32)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from realtime.core.paths import WEIGHTS

    ap = argparse.ArgumentParser(
        prog="python -m realtime.export.tf_import", description="convert the official TF1 weights to a bundle"
    )
    ap.add_argument("checkout", type=Path, help="a PRNet checkout (with Data/net-data, Data/uv-data)")
    ap.add_argument("-o", "--output", type=Path, default=WEIGHTS / "prnet_official256.pt")
    args = ap.parse_args(argv)
    try:
        print(f"wrote {import_prnet(args.checkout, args.output)}")
        return 0
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
