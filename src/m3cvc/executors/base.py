"""The executor abstraction every batch job runs on (eval, batch encode / decode, dataset build).

A job is a list of :class:`Task` s, each a module-level function and its (picklable) arguments plus
the :class:`Resources` it needs. :meth:`Executor.run` runs them all, calls ``on_outcome`` in the
driver process as each finishes (so results are written there, one task at a time, atomically),
retries a task that failed unexpectedly at most ``retries`` more times, shows tasks done / total
with an ETA, and returns one :class:`Outcome` per task, in task order. A task that raises an
:class:`~m3cvc.errors.M3cvcError` (bad input, bad settings) is not retried: it would fail again.

Backends: ``local`` (in this process, in order: the sequential behaviour), ``process`` (a pool of
worker processes on this machine), ``ray`` (a Ray cluster). Workers keep what tasks load (models,
decoded clips) in :func:`worker_cache`, so a stage's models are loaded once per worker, not per task.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Optional, Sequence

from ..errors import M3cvcError, count


@dataclass(frozen=True)
class Resources:
    """What one task needs: CPUs and GPUs (fractions allowed: 0.5 GPU = two tasks share one)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if not (self.num_cpus >= 0 and self.num_gpus >= 0):
            raise ValueError(f"resources must be >= 0, got {self.num_cpus} CPUs, {self.num_gpus} GPUs")


@dataclass(frozen=True)
class Task:
    """One unit of work. ``fn`` must be a module-level function (workers import it by name)."""

    key: str
    fn: Callable[..., Any]
    args: tuple = ()
    resources: Resources = field(default_factory=Resources)


@dataclass
class Outcome:
    task: Task
    value: Any = None
    error: Optional[str] = None  # one line, "Type: message", when the task failed for good
    attempts: int = 0
    seconds: float = 0.0  # of the last attempt, in the worker

    @property
    def ok(self) -> bool:
        return self.error is None


def invoke(fn: Callable[..., Any], args: tuple) -> tuple[bool, Any, float, bool]:
    """Run ``fn(*args)`` in a worker: ``(ok, value or one-line error, seconds, retryable)``. Errors are
    returned, not raised, so that every exception type crosses process boundaries the same way."""
    start = time.perf_counter()
    try:
        return True, fn(*args), time.perf_counter() - start, False
    except M3cvcError as exc:
        return False, f"{type(exc).__name__}: {exc}", time.perf_counter() - start, False
    except Exception as exc:  # noqa: BLE001 - a task's unexpected failure is reported, not fatal
        where = traceback.extract_tb(exc.__traceback__)[-1]
        message = f"{type(exc).__name__}: {exc} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        return False, message, time.perf_counter() - start, True


_CACHE: dict[Hashable, Any] = {}


def worker_cache(key: Hashable, build: Callable[[], Any], slot: Optional[str] = None) -> Any:
    """What ``build()`` returns, built once per worker process for ``key``. With ``slot``, only the
    latest key of that slot is kept (e.g. one decoded clip per worker, not every clip it has seen)."""
    if slot is not None:
        key = (slot, key)
    if key not in _CACHE:
        if slot is not None:  # the slot's previous entry goes before the new one is built
            for old in [k for k in _CACHE if isinstance(k, tuple) and k[:1] == (slot,)]:
                _CACHE.pop(old)
        _CACHE[key] = build()
    return _CACHE[key]


def clear_worker_cache() -> None:
    """Forget (and close, where they have ``close()``) everything this process's tasks loaded."""
    for value in _CACHE.values():
        close = getattr(value, "close", None)
        if callable(close):
            close()
    _CACHE.clear()


class Executor(ABC):
    """Runs tasks; subclasses provide :meth:`_start`, :meth:`_submit`, :meth:`_wait` and :meth:`close`."""

    name = ""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def start(self) -> None:
        """Bring the workers up now (else at the first task): a cluster that cannot be reached fails
        before the job makes any output."""
        self._start()

    # -- backend hooks ------------------------------------------------------------------------
    def _start(self) -> None:
        """Bring the workers up (called once, before the first task)."""

    @abstractmethod
    def _submit(self, task: Task) -> Any:
        """Start ``task``; return a handle."""

    @abstractmethod
    def _wait(self, handles: list[Any]) -> list[tuple[Any, tuple[bool, Any, float, bool]]]:
        """Block until at least one handle is done; return ``(handle, invoke() result)`` of the done ones.
        A worker that died counts as a retryable failure."""

    def close(self) -> None:
        """Release the workers."""

    def capacity(self) -> int:
        """How many tasks to keep in flight."""
        return self.workers

    def unsatisfiable(self, task: Task) -> Optional[str]:
        """Why ``task`` can never be scheduled here (it asks for more than there is), or None."""
        return None

    def gpu_count(self) -> int:
        """GPUs the workers can use (this machine's; a Ray cluster's)."""
        from .process import visible_gpus

        return len(visible_gpus())

    def describe(self) -> str:
        return f"{self.name} ({count(self.workers, 'worker')})"

    # -- the one loop every job uses ----------------------------------------------------------
    def run(
        self, tasks: Sequence[Task], on_outcome: Optional[Callable[[Outcome], None]] = None, *,
        retries: int = 1, desc: str = "tasks", progress: bool = True,
    ) -> list[Outcome]:  # fmt: skip
        from tqdm import tqdm

        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            raise ValueError("task keys must be unique")
        outcomes = {t.key: Outcome(t) for t in tasks}
        queue = list(tasks)
        running: dict[Any, Task] = {}
        failed = 0
        if tasks:
            self._start()
        with tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress) as bar:
            while queue or running:
                while queue and len(running) < self.capacity():
                    task = queue.pop(0)
                    out = outcomes[task.key]
                    out.attempts += 1
                    why = self.unsatisfiable(task)
                    if why is not None:  # would wait for resources forever: fail it now
                        out.error = f"ResourceError: {why}"
                        failed += 1
                        if on_outcome is not None:
                            on_outcome(out)
                        bar.update(1)
                        continue
                    running[self._submit(task)] = task
                for handle, (ok, value, seconds, retryable) in self._wait(list(running)):
                    task = running.pop(handle)
                    out = outcomes[task.key]
                    out.seconds = seconds
                    if not ok and retryable and out.attempts <= retries:
                        bar.write(f"retrying {task.key} (attempt {out.attempts + 1} of {retries + 1}): {value}")
                        queue.insert(0, task)
                        continue
                    out.value, out.error = (value, None) if ok else (None, value)
                    failed += not ok
                    if on_outcome is not None:
                        on_outcome(out)
                    bar.update(1)
                    bar.set_postfix_str(f"{task.key}" + (f", {failed} failed" if failed else ""), refresh=False)
        return [outcomes[k] for k in keys]

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
