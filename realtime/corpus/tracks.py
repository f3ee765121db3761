"""The face-track tables: their schema, building them from reconstructions, joining
chunks' tracks into one video's, and reading them back as numpy.

One row per face per frame. Fixed-size list columns keep each row's landmarks and
pose together and let a reader get an (N, 68, 3) array without a Python loop.
Dense vertices live in a second table because they are ~170x bigger than the rest
(11257 x 3 float16 for the lite model) and most users never read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Below this mean box IoU over the overlap frames, two chunks' tracks are different faces.
JOIN_IOU = 0.5
COLUMNS = (
    "frame", "time_s", "track_id", "box", "landmarks",
    "pose_angles", "pose_translation", "pose_scale", "confidence",
)  # fmt: skip


def _fixed(values: np.ndarray, *shape: int) -> pa.Array:
    """(N, *shape) array -> nested fixed-size lists (N rows of shape)."""
    arr: pa.Array = pa.array(np.ascontiguousarray(values).reshape(-1))
    for n in reversed(shape):
        arr = pa.FixedSizeListArray.from_arrays(arr, n)
    return arr


def column(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy, nested fixed-size lists unpacked to (N, *shape)."""
    col = table.column(name).combine_chunks()
    shape = []
    while pa.types.is_fixed_size_list(col.type):
        shape.append(col.type.list_size)
        col = col.flatten()
    return col.to_numpy(zero_copy_only=False).reshape(len(table), *shape)


def faces_table(rows: dict[str, list]) -> pa.Table:
    """Per-face rows (lists of equal length, see ``new_rows``) -> the tracks table."""
    n = len(rows["frame"])
    f32 = lambda k, *shape: np.asarray(rows[k], np.float32).reshape(n, *shape)
    return pa.table(
        {
            "frame": pa.array(np.asarray(rows["frame"], np.int32)),
            "time_s": pa.array(np.asarray(rows["time_s"], np.float64)),
            "track_id": pa.array(np.asarray(rows["track_id"], np.int32)),
            "box": _fixed(f32("box", 4), 4),
            "landmarks": _fixed(f32("landmarks", 68, 3), 68, 3),
            "pose_angles": _fixed(f32("pose_angles", 3), 3),
            "pose_translation": _fixed(f32("pose_translation", 3), 3),
            "pose_scale": pa.array(f32("pose_scale")),
            "confidence": pa.array(f32("confidence")),
        }
    )


def vertices_table(
    frames: list[int], track_ids: list[int], vertices: list[np.ndarray], n_vertices: int
) -> pa.Table:
    """Dense meshes as float16 offsets from a float32 per-face origin (their mean):
    float16 of absolute pixel coordinates would be 0.5-1 px coarse on HD frames, of
    offsets within a face a few hundredths of a pixel. Each mesh is one fixed-size
    binary value (F x 3 little-endian float16): Parquet writes a list column with a
    level per value, 20x slower for 34k values a row (measured: 150-380 ms against
    18 ms for 80 meshes)."""
    n = len(frames)
    v = np.stack(vertices).astype(np.float32) if n else np.zeros((0, n_vertices, 3), np.float32)
    origin = v.mean(1)
    offsets = np.ascontiguousarray((v - origin[:, None]).astype("<f2"))
    width = n_vertices * 3 * 2
    meshes = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(offsets)])
    table = pa.table(
        {
            "frame": pa.array(np.asarray(frames, np.int32)),
            "track_id": pa.array(np.asarray(track_ids, np.int32)),
            "origin": _fixed(origin.astype(np.float32), 3),
            "vertices": meshes,
        }
    )
    return table.replace_schema_metadata(
        {"vertices": f"float16 little-endian ({n_vertices}, 3), plus origin"}
    )


def new_rows() -> dict[str, list]:
    """Empty per-face rows for ``faces_table``."""
    return {k: [] for k in COLUMNS}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2])) - inter
    return inter / union if union > 0 else 0.0


def match_tracks(prev: pa.Table, cur: pa.Table) -> dict[int, int]:
    """Local ids in ``cur`` -> ids in ``prev``, from the frames both tables hold (the
    chunks' overlap): pairs by mean box IoU over the frames where both tracks appear,
    greedily best first, each id used once, only pairs at or above JOIN_IOU."""
    frames = np.intersect1d(column(prev, "frame"), column(cur, "frame"))

    def boxes(t: pa.Table) -> dict[int, dict[int, np.ndarray]]:
        """track id -> frame -> box, over the shared frames only (a few rows)."""
        f, ids = column(t, "frame"), column(t, "track_id")
        rows = np.flatnonzero(np.isin(f, frames))
        box = column(t.take(rows), "box")
        out: dict[int, dict[int, np.ndarray]] = {}
        for r, b in zip(rows, box, strict=True):
            out.setdefault(int(ids[r]), {})[int(f[r])] = b
        return out

    a, b = boxes(prev), boxes(cur)
    pairs = []
    for ia, fa in a.items():
        for ib, fb in b.items():
            common = fa.keys() & fb.keys()
            if common:
                pairs.append((float(np.mean([_iou(fa[f], fb[f]) for f in common])), ib, ia))
    out: dict[int, int] = {}
    for score, ib, ia in sorted(pairs, reverse=True):
        if score >= JOIN_IOU and ib not in out and ia not in out.values():
            out[ib] = ia
    return out


def relabel(table: pa.Table, ids: dict[int, int]) -> pa.Table:
    """Replace track ids (every id must be a key of ``ids``)."""
    old, where = np.unique(column(table, "track_id"), return_inverse=True)
    new = np.array([ids[int(t)] for t in old], np.int32)[where]
    return table.set_column(table.schema.get_field_index("track_id"), "track_id", pa.array(new))


def read_tracks(path: str | Path) -> dict[str, np.ndarray]:
    """A tracks Parquet file as numpy arrays: frame (N,), time_s (N,), track_id (N,),
    box (N, 4), landmarks (N, 68, 3), pose_angles (N, 3), pose_translation (N, 3),
    pose_scale (N,), confidence (N,)."""
    table = pq.read_table(path)
    return {name: column(table, name) for name in table.column_names}


def read_vertices(path: str | Path) -> dict[str, np.ndarray]:
    """A vertices Parquet file: frame (N,), track_id (N,) and vertices (N, F, 3)
    float32 frame pixels (offsets plus origin)."""
    table = pq.read_table(path)
    meshes = table.column("vertices").combine_chunks()
    raw = np.frombuffer(
        meshes.buffers()[1],
        "<f2",
        count=len(table) * meshes.type.byte_width // 2,
        offset=meshes.offset * meshes.type.byte_width,
    )
    v = raw.reshape(len(table), -1, 3).astype(np.float32) + column(table, "origin")[:, None]
    return {"frame": column(table, "frame"), "track_id": column(table, "track_id"), "vertices": v}
