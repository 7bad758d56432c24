"""``--executor process --workers N``: a pool of N worker processes on this machine.

Workers are started with ``spawn`` (no state copied from the driver, no inherited locks) and live for
the whole run, so what tasks load stays loaded (:func:`~m3cvc.executors.base.worker_cache`). On a
machine with GPUs, worker i sees only GPU ``i mod count`` (``CUDA_VISIBLE_DEVICES``), so N workers
spread over the GPUs; ``--gpus`` lists the GPU ids to use (default: ``CUDA_VISIBLE_DEVICES``, else
every GPU ``nvidia-smi`` lists). A worker that dies (killed, out of memory) fails its task as
retryable and the pool is rebuilt.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Optional, Sequence

from ..errors import count
from .base import Executor, Task, invoke


def visible_gpus() -> list[str]:
    """GPU ids this machine offers: ``CUDA_VISIBLE_DEVICES`` if set, else the ones nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _watch_parent(parent: int) -> None:
    """Exit when the driver is gone (killed with SIGKILL, out of memory): a worker must not live on
    holding CPUs and GPU memory for nobody."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(slots: Any, gpus: Sequence[str]) -> None:
    """Runs first in each worker: take a slot number and, with GPUs, pin the worker to one."""
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    os.environ["M3CVC_WORKER"] = str(slot)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="m3cvc-parent-watch").start()


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, workers: Optional[int] = None, gpus: Optional[Sequence[str]] = None) -> None:
        super().__init__(workers or os.cpu_count() or 1)
        self.gpus = list(gpus) if gpus is not None else visible_gpus()
        self._pool: Optional[cf.ProcessPoolExecutor] = None

    def _start(self) -> None:
        if self._pool is None:
            ctx = mp.get_context("spawn")
            slots = ctx.Queue()
            for i in range(self.workers):
                slots.put(i)
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                                initargs=(slots, self.gpus))  # fmt: skip

    def _submit(self, task: Task) -> Any:
        self._start()
        assert self._pool is not None
        return self._pool.submit(invoke, task.fn, task.args)

    def _wait(self, handles: list[Any]) -> list[tuple[Any, tuple[bool, Any, float, bool]]]:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        out, broken = [], False
        for future in done:
            exc = future.exception()
            if exc is None:
                out.append((future, future.result()))
            else:  # a worker died (BrokenProcessPool: every task in flight fails with it) or pickling failed
                retryable = isinstance(exc, cf.process.BrokenProcessPool)
                broken = broken or retryable
                message = "a worker process died (killed, or out of memory)" if retryable else str(exc)
                out.append((future, (False, f"{type(exc).__name__}: {message}", 0.0, retryable)))
        if broken and self._pool is not None:  # a new pool for what is retried
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return out

    def describe(self) -> str:
        gpus = f", GPUs {','.join(self.gpus)}" if self.gpus else ""
        return f"process ({count(self.workers, 'worker')}{gpus})"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
