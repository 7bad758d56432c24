"""Executors: one mechanism that runs the tasks of every batch job (eval, batch encode / decode,
dataset build) here in order (``local``), in a process pool (``process``) or on Ray (``ray``).
Backends are registered by name and imported on first use; Ray only when chosen."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..errors import ConfigError
from ..registry import Registry
from .base import Executor, Outcome, Resources, Task, clear_worker_cache, invoke, worker_cache
from .local import LocalExecutor

EXECUTORS: Registry[Executor] = Registry("executor")
EXECUTORS.register("local", "m3cvc.executors.local:LocalExecutor")
EXECUTORS.register("process", "m3cvc.executors.process:ProcessExecutor")
EXECUTORS.register("ray", "m3cvc.executors.ray_cluster:RayExecutor")


def create_executor(name: str = "local", workers: Optional[int] = None, ray_address: Optional[str] = None) -> Executor:
    """The executor ``--executor NAME --workers N [--ray-address ADDR]`` asks for."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if ray_address and name != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    if ray_address and workers is not None:
        raise ConfigError("--workers sets the CPUs of the local Ray m3cvc starts; a cluster at --ray-address has its own")
    cls: Any = EXECUTORS.resolve(name)
    if name == "ray":
        return cls(workers, ray_address)
    if name == "local":
        if workers not in (None, 1):
            raise ConfigError("--workers needs --executor process or ray (local runs one task at a time)")
        return cls()
    return cls(workers)


WEIGHT_FREE_RECONSTRUCTORS = ("flow", "blend")


def model_devices(cfg: Any) -> list[str]:
    """The ``device`` settings of an m3cvc config's model-backed stages in use (CLIP, RAFT, Qwen-VL,
    vq-diffusion, the keyframe refiner, video diffusion); empty for the lite profile."""
    from ..config import to_dict

    d = to_dict(cfg)
    stages = [("keyframes", d["keyframes"]["semantic"]), ("keyframes", d["keyframes"]["motion"]),
              ("describe", d["describe"]["backend"]), ("keyframe_codec", d["keyframe_codec"]["backend"])]  # fmt: skip
    out = [d[section].get(name.replace("-", "_"), {}).get("device") for section, name in stages]
    if d["keyframe_codec"]["backend"] in ("hevc", "avif") and d["keyframe_codec"]["refine"]["backend"] != "none":
        out.append(d["keyframe_codec"]["refine"]["device"])
    if d["reconstruct"]["backend"] not in WEIGHT_FREE_RECONSTRUCTORS:  # every other backend is video diffusion
        out.append(d["reconstruct"]["diffusion"]["device"])
    return [x for x in out if isinstance(x, str)]


def task_resources(devices: Sequence[str], executor: Executor, gpus_per_task: Optional[float] = None) -> Resources:
    """One CPU, plus ``gpus_per_task`` GPUs if given, else one GPU when a device is CUDA (``cuda``,
    ``cuda:N``, or ``auto`` where the executor's machines have GPUs), else none."""
    if gpus_per_task is not None:
        if not 0 <= gpus_per_task < 1e6:  # also refuses nan and inf
            raise ConfigError(f"--gpus-per-task must be a number >= 0, got {gpus_per_task}")
        return Resources(1.0, float(gpus_per_task))
    wants = any(d.startswith("cuda") for d in devices) or ("auto" in devices and executor.gpu_count() > 0)
    return Resources(1.0, 1.0 if wants else 0.0)


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "Outcome", "Resources", "Task", "clear_worker_cache", "create_executor",
           "invoke", "model_devices", "task_resources", "worker_cache"]
