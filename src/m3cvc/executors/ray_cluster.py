"""``--executor ray [--ray-address ADDR]``: tasks as Ray tasks on a cluster.

Without an address a local Ray is started for the run (``--workers N`` CPUs, default all) and shut
down after it; with one (``auto``, ``ray://host:10001``, ``host:6379``) the run joins that cluster,
whose nodes need m3cvc installed (same version) and the input paths mounted at the same place. Each
task asks Ray for its :class:`~m3cvc.executors.base.Resources` (``num_cpus``, fractional
``num_gpus``); Ray reuses worker processes, so what tasks load stays loaded
(:func:`~m3cvc.executors.base.worker_cache`). A worker or node that dies fails its task as retryable.
Ray is imported only here, when this executor is chosen (``pip install 'm3cvc[scale]'``).
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any, Optional

from ..errors import BackendError, count
from .base import Executor, Task, invoke


def driver_threads() -> int:
    """The intra-op thread count torch uses here. Ray gives a 1-CPU task OMP_NUM_THREADS=1, and a torch
    reduction split over another number of threads can differ in the last bits: workers get this
    count instead, so LPIPS / DISTS values equal a local run's exactly."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return os.cpu_count() or 1
    import torch

    return torch.get_num_threads()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that does not answer fails in seconds (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except ValueError:
        raise BackendError(f"--ray-address {address!r}: expected HOST:PORT, auto or ray://HOST:PORT") from None
    except OSError as exc:
        raise BackendError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                           "`ray start --head` or check --ray-address") from None


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError("--executor ray needs Ray: pip install 'm3cvc[scale]'") from None
    return ray


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, workers: Optional[int] = None, address: Optional[str] = None) -> None:
        super().__init__(workers or os.cpu_count() or 1)
        self.address = address
        self._ray: Any = None
        self._remote: Any = None
        self._started_here = False

    def _start(self) -> None:
        if self._remote is not None:
            return
        ray = self._ray = _ray()
        if self.address and ":" in self.address and not self.address.startswith(("ray://", "auto")):
            _check_reachable(self.address)
        if not ray.is_initialized():
            src = str(Path(__file__).resolve().parents[2])  # the folder holding the m3cvc package
            env = {"env_vars": {
                "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(driver_threads()),
            }}  # fmt: skip
            kwargs: dict[str, Any] = {"runtime_env": env, "log_to_driver": True, "include_dashboard": False}
            if self.address:
                kwargs["address"] = self.address
            else:  # a Ray of its own for the run, even where a cluster is running on this machine
                kwargs.update(address="local", num_cpus=self.workers)
            previous = signal.getsignal(signal.SIGTERM)
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local Ray"
                raise BackendError(f"cannot start or join {where}: {str(exc).splitlines()[0]}") from None
            finally:  # Ray's driver installs its own SIGTERM handler: keep m3cvc's (clean exit 143)
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
            self._started_here = True
        self._remote = ray.remote(invoke)

    def capacity(self) -> int:
        # keep every CPU of the cluster busy, with some tasks queued behind them
        if self._ray is not None and self._ray.is_initialized():
            return max(1, int(self._ray.cluster_resources().get("CPU", self.workers))) * 2
        return self.workers * 2

    def unsatisfiable(self, task: Task) -> Optional[str]:
        """A task asking for more CPUs or GPUs than the whole cluster has would wait forever in Ray's
        queue; it fails at once instead (an autoscaling cluster: bring its GPU nodes up first)."""
        self._start()
        have = self._ray.cluster_resources()
        r = task.resources
        for name, want, key in (("CPUs", r.num_cpus, "CPU"), ("GPUs", r.num_gpus, "GPU")):
            if want > have.get(key, 0.0) + 1e-9:
                return (f"the task asks for {want:g} {name}, the Ray cluster has {have.get(key, 0.0):g} "
                        f"(--gpus-per-task sets what a task asks for)")  # fmt: skip
        return None

    def _submit(self, task: Task) -> Any:
        self._start()
        r = task.resources
        return self._remote.options(num_cpus=r.num_cpus, num_gpus=r.num_gpus, max_retries=0).remote(task.fn, task.args)

    def _wait(self, handles: list[Any]) -> list[tuple[Any, tuple[bool, Any, float, bool]]]:
        ray = self._ray
        done, _ = ray.wait(handles, num_returns=1)
        out = []
        for ref in done:
            try:
                out.append((ref, ray.get(ref)))
            except ray.exceptions.RayError as exc:  # a worker or node died, or the task could not run
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                out.append((ref, (False, f"{type(exc).__name__}: {first}", 0.0, True)))
        return out

    def gpu_count(self) -> int:
        self._start()
        return int(self._ray.cluster_resources().get("GPU", 0))

    def describe(self) -> str:
        if self.address:
            return f"ray (cluster at {self.address})"
        return f"ray (local, {count(self.workers, 'CPU')})"

    def close(self) -> None:
        if self._started_here and self._ray is not None:
            self._ray.shutdown()
        self._started_here = False
        self._remote = None
