"""The Ray Data pipeline, run by a small actor inside the cluster that hands its rows
to the driver in batches.

Why an actor and not the driver's own ``ds.iter_rows()``: Ray Data's executor must
run in a process of the cluster, which a Ray Client driver (``--address ray://...``)
is not (Ray 2.60: "'Worker' object has no attribute 'core_worker'"), and Ray Client
cannot stream a generator either. One path for every mode, so the tests on local Ray
run the code a cluster runs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Generator
from typing import Any

from realtime.corpus.worker import ChunkWorker

#: Rows handed over per call at most, and how long a call waits for the first.
TAKE, WAIT_S = 16, 1.0


class Feeder:
    """Runs the chunks (dicts of ``Chunk``'s fields) through an actor pool of
    ``ChunkWorker`` on a thread, queueing the rows for ``take``."""

    def __init__(self, chunks: list[dict], workers: int, cpus: float, gpus: float, worker_kwargs: dict):
        self._rows: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        args = (chunks, workers, cpus, gpus, worker_kwargs)
        threading.Thread(target=self._run, args=args, name="corpus-feeder", daemon=True).start()

    def _run(self, chunks: list[dict], workers: int, cpus: float, gpus: float, worker_kwargs: dict) -> None:
        import ray

        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False  # the driver shows one
            ctx.print_on_execution_start = False
            logging.getLogger("ray.data").setLevel(logging.ERROR)
            ds = ray.data.from_items(chunks, override_num_blocks=len(chunks))
            ds = ds.map_batches(
                ChunkWorker,
                fn_constructor_kwargs=worker_kwargs,
                batch_size=1,  # one chunk a call, one call at a time per actor: none waits behind a busy one
                compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
                num_cpus=cpus,
                num_gpus=gpus or None,
            )
            for row in ds.iter_rows():
                self._rows.put(row)
        except BaseException as e:  # handed to the driver by take()
            self._error = e
        finally:
            self._rows.put(None)

    def take(self) -> tuple[list[dict], bool]:
        """The rows ready (waiting up to WAIT_S for one), and whether that was all."""
        out: list[dict] = []
        try:
            row = self._rows.get(timeout=WAIT_S)
            while row is not None:
                out.append(row)
                if len(out) >= TAKE:
                    return out, False
                row = self._rows.get_nowait()
        except queue.Empty:
            return out, False
        if self._error is not None:
            raise self._error
        return out, True


def pool_rows(
    chunks: list[dict], workers: int, cpus: float, gpus: float, worker_kwargs: dict
) -> Generator[dict, None, None]:
    """Each chunk's result row as it arrives, in completion order. Closing the
    iterator (or an interruption) kills the feeder, and with it the pool it owns."""
    import ray

    feeder: Any = ray.remote(num_cpus=0, max_restarts=0)(Feeder).remote(
        chunks, workers, cpus, gpus, worker_kwargs
    )
    try:
        while True:
            rows, done = ray.get(feeder.take.remote())
            yield from rows
            if done:
                return
    finally:
        ray.kill(feeder)
