"""What the job leaves in DIR: the manifest, the chunks' parts while their video is
unfinished, and each video's Parquet files, assembled from its parts.

Every file is written under a temporary name and renamed into place (atomic), so an
interruption at any moment leaves each file either whole or absent.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from realtime.core.types import UserError
from realtime.corpus.inputs import Settings, Video
from realtime.corpus.tracks import column, match_tracks, relabel
from realtime.corpus.worker import Chunk

FORMAT = "prnet-live-corpus/1"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Manifest:
    """DIR/manifest.json: the settings; per video (by content hash) its status ("done",
    "failed", "pending"), reason, figures, outputs and chunk states; per file path the
    hash last computed (``content_hash``)."""

    def __init__(self, out: Path, settings: Settings):
        self.path = out / "manifest.json"
        self.data: dict = {"format": FORMAT, "settings": asdict(settings), "videos": {}}
        if self.path.is_file():
            try:
                old = json.loads(self.path.read_text())
            except ValueError:
                raise UserError(f"{self.path} is not valid JSON: delete it to start afresh") from None
            if old.get("settings") != self.data["settings"]:
                diff = [
                    f"{k} {old.get('settings', {}).get(k)!r} -> {v!r}"
                    for k, v in self.data["settings"].items()
                    if old.get("settings", {}).get(k) != v
                ]
                raise UserError(
                    f"{out} holds results made with other settings ({', '.join(diff)}): "
                    "rerun with the same flags, or use another --out"
                )
            self.data = old

    @property
    def videos(self) -> dict[str, dict]:
        return self.data["videos"]

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.data, indent=1).encode())


def part_path(parts: Path, index: int, kind: str = "tracks") -> Path:
    return parts / f"chunk-{index:05d}.{kind}.parquet"


def assemble(video: Video, chunks: list[Chunk], parts: Path, out: Path, meta: dict) -> tuple[int, int, int]:
    """Join the chunks' tracks into ``out/NAME.parquet`` (and ``NAME.vertices.parquet``
    when the parts have them). Track ids: each chunk's are matched to the previous
    chunk's over their overlap frames (``match_tracks``); faces not matched get new
    ids, numbered in order of first appearance from 1. Returns (frames, rows, tracks)."""
    kinds = ["tracks"] + (["vertices"] if part_path(parts, 0, "vertices").is_file() else [])
    writers: dict[str, pq.ParquetWriter] = {}
    tmp = {k: out / f"{video.name}.{k}.parquet.tmp" for k in kinds}
    final = {
        k: out / (f"{video.name}.parquet" if k == "tracks" else f"{video.name}.{k}.parquet") for k in kinds
    }
    prev, next_id, rows, frames = None, 1, 0, 0
    try:
        for c in chunks:
            table = pq.read_table(part_path(parts, c.index))
            frames += int(table.schema.metadata[b"frames"])
            ids = match_tracks(prev, table) if prev is not None else {}
            mine = table.filter(column(table, "frame") >= c.start)
            for tid in column(mine, "track_id").tolist():  # first appearance order
                if tid not in ids:
                    ids[tid], next_id = next_id, next_id + 1
            ids.update({t: -1 for t in column(table, "track_id").tolist() if t not in ids})  # overlap only
            for kind in kinds:
                t = table if kind == "tracks" else pq.read_table(part_path(parts, c.index, kind))
                t = relabel(t.filter(column(t, "frame") >= c.start), ids)
                t = t.replace_schema_metadata({"prnet_live_corpus": json.dumps(meta)})
                if kind not in writers:
                    writers[kind] = pq.ParquetWriter(tmp[kind], t.schema, compression="zstd")
                writers[kind].write_table(t)
                if kind == "tracks":
                    rows += t.num_rows
                    prev = t
    finally:
        for w in writers.values():
            w.close()
    for kind in kinds:
        os.replace(tmp[kind], final[kind])
    return frames, rows, next_id - 1
