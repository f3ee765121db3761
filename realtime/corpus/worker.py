"""One chunk of one video through the library's FaceProcessor, and the Ray actor that
holds one engine and runs chunks.

A chunk starts ``overlap`` frames before its first emitted frame with a fresh
FaceProcessor: the tracker needs a detection anyway when joining mid-video, and the
overlap lets the smoother settle and gives the driver frames seen by both chunks to
join their tracks on. The tracker's periodic detection runs inline (not on its
background thread) so a chunk's output depends only on its frames, never on timing:
the same chunk gives the same rows on any machine, rerun or resumed.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from realtime.core.types import UserError
from realtime.corpus.tracks import faces_table, new_rows, vertices_table

#: How a chunk's error starts when its worker could not build its engine.
WORKER_FAILED = "worker could not start"


@dataclass
class Chunk:
    """Frames ``first`` .. ``end - 1`` of the video at ``path`` are processed; rows for
    frames from ``start`` on are this chunk's, the earlier ones (the overlap) are for
    joining. ``to_eof``: read on past ``end`` until the file ends (the last chunk:
    container frame counts are estimates)."""

    video: str  # the file's content hash
    path: str
    index: int
    first: int
    start: int
    end: int
    to_eof: bool
    fps: float


@dataclass
class ChunkResult:
    """What a worker sends back. ``error`` is "" for a chunk done; ``tracks`` and
    ``vertices`` are Parquet files' bytes (``vertices`` b"" unless asked for).
    frames: frames read, overlap included; faces: rows from ``start`` on."""

    video: str
    index: int
    frames: int
    faces: int
    seconds: float
    error: str
    tracks: bytes
    vertices: bytes


def _parquet(table: pa.Table) -> bytes:
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue().to_pybytes()


def _open_at(path: str, first: int, threads: int) -> cv2.VideoCapture:
    """A capture whose next read is frame ``first``, decoding on ``threads`` threads
    (FFmpeg takes every core otherwise, and workers share the cores). Seeking is exact
    with FFmpeg for the usual containers; where it lands elsewhere, decode from the
    start instead."""
    params = [cv2.CAP_PROP_N_THREADS, threads]
    cap = cv2.VideoCapture(path, cv2.CAP_ANY, params)
    if first and cap.isOpened():
        cap.set(cv2.CAP_PROP_POS_FRAMES, first)
        if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != first:
            cap.release()
            cap = cv2.VideoCapture(path, cv2.CAP_ANY, params)
            for _ in range(first):
                if not cap.grab():
                    break
    return cap


def _confidence(processor, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """MTCNN O-Net's face score (0-1) of each face's landmark box: low when the
    network drew a face on something that is not one (a profile, a hand)."""
    verify = getattr(processor.detector, "verify", None)
    if verify is None or not len(landmarks):
        return np.full(len(landmarks), np.nan, np.float32)
    boxes = np.concatenate([landmarks[:, :, :2].min(1), landmarks[:, :, :2].max(1)], 1)
    return np.asarray(verify(image, boxes), np.float32)


def run_chunk(
    processor, chunk: Chunk, vertices: bool = False, raw: bool = False, threads: int = 1
) -> ChunkResult:
    """Process one chunk with a fresh ``processor`` (a FaceProcessor). Never raises:
    a failure is the result's ``error``, so one bad chunk cannot stop the corpus."""
    from realtime.core.types import Frame

    t0 = time.perf_counter()
    rows, verts = new_rows(), ([], [], [])
    cap, i, error = _open_at(chunk.path, chunk.first, threads), chunk.first, ""
    try:
        if not cap.isOpened():
            raise OSError("OpenCV cannot open the file (moved, or not a video it can decode)")
        while chunk.to_eof or i < chunk.end:
            ok, image = cap.read()
            if not ok or image is None:
                break
            t = i / chunk.fps
            res = processor.process(Frame(image, seq=i, t_capture=t))
            if res.status.startswith(("error", "bad frame")):
                raise RuntimeError(f"frame {i}: {processor.last_error or res.status}")
            recs = res.raw if raw else res.reconstructions
            lms = np.stack([r.landmarks for r in recs]) if recs else np.zeros((0, 68, 3), np.float32)
            for rec, conf in zip(recs, _confidence(processor, image, lms), strict=True):
                xy = rec.landmarks[:, :2]
                rows["frame"].append(i)
                rows["time_s"].append(t)
                rows["track_id"].append(rec.track_id)
                rows["box"].append(np.concatenate([xy.min(0), xy.max(0)]))
                rows["landmarks"].append(rec.landmarks)
                rows["pose_angles"].append(rec.pose.angles)
                rows["pose_translation"].append(rec.pose.translation)
                rows["pose_scale"].append(rec.pose.scale)
                rows["confidence"].append(conf)
                if vertices and i >= chunk.start:  # the overlap's rows only serve the join
                    verts[0].append(i)
                    verts[1].append(rec.track_id)
                    verts[2].append(rec.vertices)
            i += 1
        wanted = chunk.end if not chunk.to_eof else int(0.95 * chunk.end - 1)
        if i < wanted:
            raise OSError(
                f"decoding stopped at frame {i}, expected frames up to {chunk.end - 1}: the file is "
                "truncated or corrupt (re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`)"
            )
    except (OSError, RuntimeError) as e:  # ours: the message says it all
        error = str(e)
    except Exception as e:  # reported per chunk; the driver records it in the manifest
        error = f"{type(e).__name__}: {e}"
    finally:
        cap.release()
    if error:
        return ChunkResult(
            chunk.video, chunk.index, i - chunk.first, 0, time.perf_counter() - t0, error, b"", b""
        )
    return ChunkResult(
        chunk.video,
        chunk.index,
        i - chunk.first,
        sum(f >= chunk.start for f in rows["frame"]),
        time.perf_counter() - t0,
        "",
        _parquet(faces_table(rows).replace_schema_metadata({"frames": str(max(0, i - chunk.start))})),
        _parquet(vertices_table(*verts, len(processor.decoder.face_ind))) if vertices else b"",
    )


def chunk_processor(base):
    """A fresh FaceProcessor sharing ``base``'s engine, decoder and detector (their
    weights load once per worker), its tracker set to detect inline (module docstring)."""
    proc = base.fresh()
    config = getattr(proc.tracker, "config", None)
    if config is not None and hasattr(config, "background"):
        config.background = False
    return proc


class ChunkWorker:
    """Ray Data callable class: one per actor, so the engine is built once per worker
    and reused for every chunk it is given. ``threads``: torch, onnxruntime, OpenCV and
    decoder threads, 1 per CPU the actor holds, so N actors on N cores do not fight
    over them. ``weights``: the bundle file's bytes, so workers need no disk shared
    with the driver for it."""

    def __init__(
        self,
        weights: bytes,
        backend: str,
        device: str,
        max_faces: int,
        threads: int,
        vertices: bool,
        raw: bool,
    ):
        import torch

        from realtime.core.weights import load_bundle
        from realtime.live.faces import FaceProcessor

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        self.threads = threads
        self.vertices, self.raw = vertices, raw
        self.error = ""
        try:
            with tempfile.TemporaryDirectory() as tmp:  # the bundle travels as bytes: no shared disk needed
                path = Path(tmp) / "weights.pt"
                path.write_bytes(weights)
                bundle = load_bundle(path)
            self.processor = FaceProcessor.from_bundle(bundle, backend, device, max_faces=max_faces)
        except Exception as e:  # reported with each chunk: the driver stops with this one line
            self.error = f"{WORKER_FAILED}: {e}" if isinstance(e, UserError) else f"{WORKER_FAILED}: {e!r}"

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        results = []
        for j in range(len(batch["index"])):
            chunk = Chunk(**{k: _scalar(batch[k][j]) for k in Chunk.__dataclass_fields__})
            if self.error:
                results.append(asdict(ChunkResult(chunk.video, chunk.index, 0, 0, 0.0, self.error, b"", b"")))
                continue
            proc = chunk_processor(self.processor)
            results.append(asdict(run_chunk(proc, chunk, self.vertices, self.raw, self.threads)))
        return pa.Table.from_pylist(results)


def _scalar(value: Any) -> Any:
    """numpy scalar -> Python (Ray Data hands a numpy batch)."""
    return value.item() if isinstance(value, np.generic) else value
