"""What a corpus is made of: the input paths expanded to video files, each file's
content hash and properties, and its chunks."""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

from realtime.core.types import UserError
from realtime.corpus.worker import Chunk

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
LIST_EXTENSIONS = (".txt", ".lst", ".list")


@dataclass
class Settings:
    """What the outputs depend on: a DIR made with other settings is not resumed."""

    chunk: int = 256
    overlap: int = 8
    max_frames: int | None = None
    max_faces: int = 4
    vertices: bool = False
    raw: bool = False
    weights: str = ""  # the bundle's SHA-256


@dataclass
class Video:
    """One input file: its content hash, the name its outputs take (stem and hash, so
    two clip.mp4 in different folders do not collide), what OpenCV reads of it, and
    ``error``, why it cannot be read ("" when it can)."""

    path: Path
    sha: str
    name: str
    fps: float = 30.0
    frames: int = 0
    size: tuple[int, int] = (0, 0)
    error: str = ""


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Globs, folders (their videos, recursively), text lists of paths (.txt, .lst:
    one a line, # comments, relative to the list) and files -> files, each once."""
    out: dict[Path, None] = {}

    def add(item: str, base: Path) -> None:
        p = Path(item).expanduser()
        p = p if p.is_absolute() else base / p
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS:
                    out[f.resolve()] = None
        elif p.is_file() and p.suffix.lower() in LIST_EXTENSIONS:
            for line in p.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    add(line.strip(), p.parent)
        elif p.is_file():
            out[p.resolve()] = None
        elif glob.has_magic(item):
            matches = sorted(glob.glob(str(p), recursive=True))
            if not matches:
                raise UserError(f"{item}: the pattern matches no file")
            for m in matches:
                add(m, base)
        else:
            raise UserError(f"{item}: no such file, folder or list (check the path)")

    for item in inputs:
        add(item, Path.cwd())
    if not out:
        raise UserError(f"no videos found in {' '.join(inputs)} (looked for {', '.join(VIDEO_EXTENSIONS)})")
    return list(out)


def content_hash(path: Path, known: dict[str, dict] | None = None) -> str:
    """SHA-256 of the file. ``known`` (the manifest's) remembers it by path, size and
    modification time, so a rerun over a big corpus does not read every file again."""
    st, key = path.stat(), str(path)
    hit = (known or {}).get(key)
    if hit and (hit["size"], hit["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
        return hit["sha256"]
    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    if known is not None:
        known[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
    return sha


def probe(path: Path, known: dict[str, dict] | None = None) -> Video:
    """Hash and open the file; an unreadable one comes back with ``error`` set."""
    from realtime.live.capture import VideoSource

    sha = content_hash(path, known)
    video = Video(path, sha, f"{path.stem}-{sha[:8]}")
    try:
        src = VideoSource(path)
    except UserError as e:
        video.error = str(e).removeprefix(f"{path}: ")
        return video
    video.fps, video.frames, video.size = src.fps, src.frame_count, src.size
    src.close()
    return video


def plan_chunks(video: Video, settings: Settings) -> list[Chunk]:
    """Chunks of ``settings.chunk`` frames, each read from ``overlap`` frames earlier.
    A video of unknown length is one chunk read to its end."""
    n, capped = video.frames, False
    if settings.max_frames is not None and (n == 0 or settings.max_frames < n):
        n, capped = settings.max_frames, True
    starts = list(range(0, n, settings.chunk)) or [0]
    return [
        Chunk(
            video=video.sha,
            path=str(video.path),
            index=k,
            first=max(0, s - settings.overlap),
            start=s,
            end=min(s + settings.chunk, n),
            to_eof=k == len(starts) - 1 and not capped,
            fps=video.fps,
        )
        for k, s in enumerate(starts)
    ]
