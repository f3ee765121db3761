"""Process a video corpus into Parquet face tracks on Ray Data: ``python -m
realtime.corpus INPUT... --out DIR`` (see docs/corpus.md).

Videos are cut into chunks of frames so one long video spreads over many workers;
each Ray actor holds one engine and runs chunks through the library's FaceProcessor;
the driver joins the chunks' tracks over their overlap and writes one Parquet table
per video, with a manifest that makes reruns resume.
"""

from realtime.corpus.inputs import Settings, expand_inputs, plan_chunks, probe
from realtime.corpus.job import Resources, Summary, run
from realtime.corpus.tracks import read_tracks, read_vertices
from realtime.corpus.worker import Chunk, chunk_processor, run_chunk

__all__ = [
    "Chunk",
    "Resources",
    "Settings",
    "Summary",
    "expand_inputs",
    "chunk_processor",
    "plan_chunks",
    "probe",
    "read_tracks",
    "read_vertices",
    "run",
    "run_chunk",
]
