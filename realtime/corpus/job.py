"""The driver: plan the corpus's chunks, stream them through a Ray Data actor pool,
record each result as it arrives and assemble each video once its chunks are in.

A rerun resumes: videos whose outputs the manifest lists as done are skipped (by
content hash, so a renamed or moved file is still known), chunks whose parts are on
disk are reused, and everything else (never finished, failed) is run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from realtime.core.types import UserError
from realtime.corpus.inputs import Settings, Video, expand_inputs, plan_chunks, probe
from realtime.corpus.pool import pool_rows
from realtime.corpus.store import Manifest, assemble, part_path, write_atomic
from realtime.corpus.worker import WORKER_FAILED, Chunk

#: Seconds between manifest writes while videos finish (and always at the end): the
#: parts on disk are the record of finished chunks, so a hard kill loses little.
SAVE_EVERY = 2.0


@dataclass
class Resources:
    """Where and how wide to run: these do not change the outputs."""

    workers: int | None = None  # None: as many as the CPUs (or GPUs) allow
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    address: str | None = None
    backend: str | None = None  # None: onnxruntime on a CPU, auto on a GPU
    object_store_mb: int | None = None
    progress: bool | None = None  # None: when stderr is a terminal


@dataclass
class Summary:
    """One run's figures. frames/faces/seconds count this run's work only: videos
    skipped as finished, and chunks reused from an interrupted run, are not in them.
    busy_s: the workers' time inside chunks, summed (startup excluded)."""

    videos: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    faces: int = 0
    chunks: int = 0
    reused_chunks: int = 0
    workers: int = 0
    seconds: float = 0.0
    busy_s: float = 0.0
    interrupted: bool = False
    error: str = ""
    steady_fps: float = 0.0

    def steady(self, arrivals: list[tuple[float, int]]) -> None:
        """frames/s once every worker is up: from the arrival of the workers-th result
        to the last, counting the frames of the results after it (start-up, Ray's
        and the engines', is what ``fps`` has and this has not)."""
        w = max(1, self.workers)
        if len(arrivals) > w and arrivals[-1][0] > arrivals[w - 1][0]:
            frames = sum(n for _, n in arrivals[w:])
            self.steady_fps = frames / (arrivals[-1][0] - arrivals[w - 1][0])

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [
            f"videos {self.videos}: {self.done} done, {self.skipped} already done, {len(self.failed)} failed"
            + (" (interrupted: rerun the same command to resume)" if self.interrupted else ""),
            f"frames {self.frames}, faces {self.faces}, chunks {self.chunks}"
            + (f" (+{self.reused_chunks} reused)" if self.reused_chunks else "")
            + f", {self.seconds:.1f} s, {self.fps:.1f} frames/s with {self.workers} worker(s)"
            + (f" ({self.steady_fps:.1f} after start-up)" if self.steady_fps else "")
            + (f"; {self.frames / self.busy_s:.1f} frames/s per busy worker" if self.busy_s > 0 else ""),
        ]
        out += [f"failed: {path}: {reason}" for path, reason in self.failed]
        return out + ([f"error: {self.error}; rerun to resume"] if self.error else [])


def _init_ray(res: Resources) -> bool:
    """Start or join Ray; True when this call started it (so it shuts it down)."""
    if (
        res.address
        and "RAY_AUTH_MODE" not in os.environ
        and (os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").is_file())
    ):  # as `ray start` does where a token exists, so the cluster accepts us; read when ray loads
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    if ray.is_initialized():
        return False
    kw: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if res.address:
        _reachable(res.address)
        try:
            ray.init(address=res.address, **kw)
        except Exception as e:  # ConnectionError, a version mismatch, a bad address...
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UserError(
                f"--address {res.address}: no Ray cluster to join ({why}); start one with `ray start "
                "--head` (docs/corpus.md), or leave --address out to run on this machine"
            ) from None
    else:
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        cpus = max(usable, int((res.workers or 1) * res.cpus_per_worker))  # the cores we may use (taskset)
        mem = res.object_store_mb * 2**20 if res.object_store_mb else None
        # A private instance, never a cluster someone started here. Its workers run at the
        # driver's priority: Ray starts them at nice 15, and beside any other busy process
        # on the machine they then got a fraction of a core each.
        ray.init(
            address="local",
            num_cpus=cpus,
            object_store_memory=mem,
            _system_config={"worker_niceness": 0},
            _node_ip_address="127.0.0.1",  # a private instance talks over loopback only
            **kw,
        )
    return True


def _reachable(address: str) -> None:
    """Fail in 5 s, in one line, for a HOST:PORT nobody listens on: Ray itself retries
    such an address for ever."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UserError(
            f"--address {address}: nothing answers there ({e.strerror or e}); start the cluster with "
            "`ray start --head` (docs/corpus.md), or leave --address out to run on this machine"
        ) from None


def _drop_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # absent, or holds parts of unfinished videos
        pass


def _pool_size(res: Resources) -> int:
    """--workers, or as many as the cluster's CPUs (GPUs) hold; one line instead of a
    pool that waits for ever on resources the cluster does not have."""
    import ray

    total = ray.cluster_resources()
    fit = int(total.get("CPU", 0) / res.cpus_per_worker)
    if res.gpus_per_worker > 0:
        fit = min(fit, int(total.get("GPU", 0) / res.gpus_per_worker))
    workers = res.workers or max(1, fit)
    if workers > fit:
        raise UserError(
            f"{workers} worker(s) of {res.cpus_per_worker:g} CPU and {res.gpus_per_worker:g} GPU need "
            f"more than Ray has ({total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs): lower "
            "--workers or --cpus-per-worker/--gpus-per-worker"
        )
    return workers


class Job:
    """One run over one DIR: plan, run the chunks, record results, assemble videos."""

    def __init__(self, out: Path, settings: Settings, res: Resources, weights: bytes):
        self.out, self.settings, self.res, self.weights = out, settings, res, weights
        self.manifest = Manifest(out, settings)
        self.plans: dict[str, tuple[Video, list[Chunk]]] = {}
        self.summary = Summary()
        self._saved = 0.0

    def parts(self, sha: str) -> Path:
        return self.out / ".parts" / self.manifest.videos[sha]["name"]

    def plan(self, paths: list[Path]) -> list[Chunk]:
        """Chunks still to run; videos already done are skipped, unreadable ones failed."""
        todo: list[Chunk] = []
        self.summary.videos = len(paths)
        for path in paths:
            video = probe(path, self.manifest.data.setdefault("files", {}))
            entry = self.manifest.videos.get(video.sha, {})
            outputs = [self.out / o for o in entry.get("outputs", [])]
            if video.sha in self.plans or (
                entry.get("status") == "done" and outputs and all(o.is_file() for o in outputs)
            ):  # finished before, or the same content under another name
                self.summary.skipped += 1
                continue
            entry = {"path": str(path), "name": video.name, "status": "pending", "reason": "", "outputs": []}
            self.manifest.videos[video.sha] = entry
            if video.error:
                entry.update(status="failed", reason=video.error)
                self.summary.failed.append((str(path), video.error))
                continue
            chunks = plan_chunks(video, self.settings)
            self.plans[video.sha] = (video, chunks)
            have = {c.index for c in chunks if part_path(self.parts(video.sha), c.index).is_file()}
            self.summary.reused_chunks += len(have)
            entry["chunks"] = {str(c.index): "done" if c.index in have else "pending" for c in chunks}
            todo += [c for c in chunks if c.index not in have]
        self.manifest.save()
        for sha in self.plans:  # every chunk already there: assemble now
            if all(v == "done" for v in self.manifest.videos[sha]["chunks"].values()):
                self.finish(sha)
        return todo

    def record(self, c: Chunk, row: dict) -> int:
        """Keep one chunk's result; returns the frames it emitted."""
        entry = self.manifest.videos[c.video]
        self.summary.chunks += 1
        self.summary.busy_s += float(row["seconds"])
        if row["error"].startswith(WORKER_FAILED):  # a bad --backend, no GPU: same for every chunk
            raise UserError(row["error"])
        emitted = 0
        if row["error"]:
            entry["chunks"][str(c.index)] = f"failed: {row['error']}"
        else:
            parts = self.parts(c.video)
            parts.mkdir(parents=True, exist_ok=True)
            write_atomic(part_path(parts, c.index), row["tracks"])
            if self.settings.vertices:
                write_atomic(part_path(parts, c.index, "vertices"), row["vertices"])
            entry["chunks"][str(c.index)] = "done"
            emitted = max(0, int(row["frames"]) - (c.start - c.first))
            self.summary.frames += emitted
            self.summary.faces += int(row["faces"])
        if all(v != "pending" for v in entry["chunks"].values()):
            self.finish(c.video)
        return emitted

    def finish(self, sha: str) -> None:
        """Assemble a video whose chunks all came back, or record why it failed."""
        video, chunks = self.plans[sha]
        entry = self.manifest.videos[sha]
        bad = {k: v for k, v in entry["chunks"].items() if v != "done"}
        if bad:
            k, why = next(iter(bad.items()))
            c = chunks[int(k)]
            more = f" (+{len(bad) - 1} more chunks failed)" if len(bad) > 1 else ""
            entry.update(status="failed", reason=f"chunk {k} (frames {c.start}-{c.end - 1}) {why}{more}")
            self.summary.failed.append((str(video.path), entry["reason"]))
        else:
            meta = {"video": str(video.path), "sha256": sha, "fps": video.fps, "size": list(video.size)}
            meta.update(settings=asdict(self.settings))
            frames, rows, tracks = assemble(video, chunks, self.parts(sha), self.out, meta)
            names = [f"{video.name}.parquet"] + (
                [f"{video.name}.vertices.parquet"] if self.settings.vertices else []
            )
            entry.update(status="done", reason="", frames=frames, faces=rows, tracks=tracks, outputs=names)
            shutil.rmtree(self.parts(sha), ignore_errors=True)
            self.summary.done += 1
        if time.monotonic() - self._saved > SAVE_EVERY:
            self.save()

    def save(self) -> None:
        self.manifest.save()
        self._saved = time.monotonic()

    def run_pool(self, todo: list[Chunk]) -> None:
        """Stream the chunks through the actor pool, recording each as it arrives."""
        from tqdm import tqdm

        res, settings = self.res, self.settings
        self.summary.workers = _pool_size(res)
        gpu = res.gpus_per_worker > 0
        worker_kwargs = {
            "weights": self.weights,
            "backend": res.backend or ("auto" if gpu else "onnxruntime"),
            "device": "cuda" if gpu else "cpu",
            "max_faces": settings.max_faces,
            "threads": max(1, int(res.cpus_per_worker)),
            "vertices": settings.vertices,
            "raw": settings.raw,
        }
        progress = res.progress if res.progress is not None else sys.stderr.isatty()
        by_key = {(c.video, c.index): c for c in todo}
        arrivals: list[tuple[float, int]] = []
        total = sum(c.end - c.start for c in todo)
        bar = tqdm(total=total, unit="frame", desc="corpus", disable=not progress, file=sys.stderr)
        rows = pool_rows(
            [asdict(c) for c in todo],
            self.summary.workers,
            res.cpus_per_worker,
            res.gpus_per_worker,
            worker_kwargs,
        )
        try:
            for row in rows:
                emitted = self.record(by_key[(row["video"], int(row["index"]))], row)
                arrivals.append((time.perf_counter(), emitted))
                bar.update(emitted)
                bar.set_postfix(failed=len(self.summary.failed), refresh=False)
        finally:
            rows.close()
            bar.close()
            self.summary.steady(arrivals)


def run(
    inputs: list[str],
    out: str | Path,
    settings: Settings,
    res: Resources,
    weights: str | None = None,
    model: str = "auto",
) -> Summary:
    """The whole job (module docstring). Raises UserError, one line, for bad input.
    ``weights``: a bundle's path, or ``model``: a shipped model by name."""
    from realtime.core.weights import resolve_bundle

    t0 = time.perf_counter()
    paths = expand_inputs(inputs)
    bundle = resolve_bundle(weights, model)  # a bad --weights / --model fails here, before Ray starts
    if bundle.path is None:  # load_bundle always sets it; the type allows None
        raise UserError("the weights bundle has no file to send to the workers: pass --weights PATH")
    weights_bytes = bundle.path.read_bytes()
    settings.weights = hashlib.sha256(weights_bytes).hexdigest()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.tmp"):  # left by an interrupted assembly
        stale.unlink()
    job = Job(out, settings, res, weights_bytes)
    started = False
    try:
        todo = job.plan(paths)
        if todo:
            started = _init_ray(res)
            job.run_pool(todo)
    except KeyboardInterrupt:
        job.summary.interrupted = True
    except Exception as e:  # Ray gave up (a worker that keeps dying, a lost cluster)
        if not type(e).__module__.startswith("ray"):
            raise
        job.summary.error = f"Ray stopped the run ({type(e).__name__}: {str(e).splitlines()[0][:300]})"
    finally:
        job.save()
        _drop_empty(out / ".parts")
        if started:
            import ray

            ray.shutdown()
    job.summary.seconds = time.perf_counter() - t0
    return job.summary
