"""Where a model comes from: one resolver for every model-backed stage (CLIP, RAFT, Qwen-VL, Stable
Diffusion parts, video diffusion), so that a missing model fails in seconds with one line.

A model setting is either a local folder or a Hugging Face hub id. :func:`resolve_model` returns
``(source, local_files_only)`` for ``from_pretrained``:

- a path (absolute, ``./``, ``../``, ``~``, or an existing folder): the folder, which must exist;
- a hub id already in the HF cache: the id, loaded from the cache only (no network);
- a hub id not cached: the id, if the hub answers within :data:`PROBE_SECONDS` (the library then
  downloads it); else, or with ``local_files_only`` / ``HF_HUB_OFFLINE=1``, a
  :class:`~m3cvc.errors.BackendError` naming the model, the config key that sets it and how to use a
  local folder instead (no retry storm: transformers / diffusers retry a dead hub for minutes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from .errors import BackendError, first_line

PROBE_SECONDS = 3.0
_reachable: dict[str, bool] = {}  # endpoint -> answered, once per process


def looks_like_path(model: str) -> bool:
    """A folder, not a hub id (``name`` or ``org/name``): ``/...``, ``./``, ``../``, ``~``, deeper paths,
    or anything that exists here."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or Path(model).expanduser().exists()


def _cached(model: str, revision: Optional[str]) -> bool:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers / diffusers
        return False
    try:
        snapshot_download(model, revision=revision, local_files_only=True)
        return True
    except (LocalEntryNotFoundError, OSError, ValueError):
        return False


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(endpoint: Optional[str] = None, timeout: float = PROBE_SECONDS) -> bool:
    """Whether the hub answers its model-listing API within ``timeout`` seconds (asked once per process).
    A refused or silent connection, or something else answering (a captive proxy's 404), is unreachable;
    401 / 403 are a hub that wants a token, so reachable."""
    import urllib.error
    import urllib.request

    endpoint = endpoint or hub_endpoint()
    if endpoint not in _reachable:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint + "/api/models?limit=1", method="HEAD"), timeout=timeout)
            _reachable[endpoint] = True
        except urllib.error.HTTPError as exc:
            _reachable[endpoint] = exc.code in (401, 403)
        except (OSError, ValueError):  # refused, no route, DNS, timeout
            _reachable[endpoint] = False
    return _reachable[endpoint]


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def stored_model_path(model: str) -> str:
    """How a model setting is written into streams and checkpoints: an existing local folder or file as an
    absolute path (a relative one would mean another place from another working directory), anything else
    as given."""
    if model.startswith("taef2:"):  # a backend prefix before the folder
        return "taef2:" + stored_model_path(model[len("taef2:"):])
    if model and looks_like_path(model) and Path(model).expanduser().exists():
        return str(Path(model).expanduser().resolve())
    return model


def resolve_model(model: str, key: str, local_files_only: bool = False, revision: Optional[str] = None,
                  download_options: str = "", offline_reason: str = "local_files_only is set") -> tuple[str, bool]:
    """``(source, local_files_only)`` to load ``model`` (the value of config key ``key``) with, or a
    one-line BackendError when it cannot be had here; ``download_options`` (e.g. ``--include`` patterns
    for the part of a repo that is read) go into the download hint."""
    if not model:
        raise BackendError(f"{key} is empty: set it to a hub id or a local folder")
    if looks_like_path(model):
        path = Path(model).expanduser()
        if path.exists() and not path.is_dir():
            raise BackendError(f"{key}: {path} is a file; set {key} to a folder holding the model's files, or to a hub id")
        if not path.is_dir():
            raise BackendError(f"{key}: the local folder {path} does not exist (set {key} to a folder holding the "
                               "model's files, or to a hub id)")  # fmt: skip
        return str(path), True
    if _cached(model, revision):
        return model, True
    command = f"hf download {model}" + (f" {download_options}" if download_options else "")
    how = (f"download it where the hub is reachable ({command}) and copy the HF cache here, "
           f"or set {key} to a local folder with its files")  # fmt: skip
    if local_files_only or offline():
        why = offline_reason if local_files_only else "HF_HUB_OFFLINE is set"
        raise BackendError(f"model {model} ({key}) is not in the HF cache and {why}: {how}")
    if not hub_reachable():
        raise BackendError(f"model {model} ({key}) is not in the HF cache and the hub ({hub_endpoint()}) cannot be "
                           f"reached: {how}")  # fmt: skip
    return model, False


def load_pipeline(pipeline_class: Any, model: str, dtype: Any, local_files_only: bool, key: str, **kwargs: Any) -> Any:
    """``pipeline_class.from_pretrained(model, dtype=..., **kwargs)`` for a diffusers pipeline class, with
    ``model`` (the value of config key ``key``) resolved by :func:`resolve_model` and loading errors turned
    into a one-line :class:`BackendError`."""
    model, local_files_only = resolve_model(model, key, local_files_only)
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401  (diffusers >= 0.36)

        dtype_kw = {"dtype": dtype}
    except ImportError:  # older diffusers only know ``torch_dtype``
        dtype_kw = {"torch_dtype": dtype}
    try:
        return pipeline_class.from_pretrained(model, local_files_only=local_files_only, **dtype_kw, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = first_line(exc)
        raise BackendError(
            f"cannot load {pipeline_class.__name__} from {model!r} ({first}); download it into the "
            f"Hugging Face cache or set {key} to a local folder"
        ) from exc


def progress_disabled(progress: bool = True) -> bool:
    """Whether a model stage's progress bar stays hidden: the stage was built without progress, or the
    command runs with ``-q`` (which sets ``TQDM_DISABLE``)."""
    return not progress or os.environ.get("TQDM_DISABLE") == "1"


def place_pipeline(pipe: Any, device: str, cpu_offload: bool, desc: str, progress: bool = True) -> Any:
    """A loaded diffusers pipeline on ``device`` (a resolved name): model CPU offload where asked and a
    GPU is used (offloading to the CPU means nothing when running on it), else moved; its progress bar
    named ``desc`` and hidden per :func:`progress_disabled`."""
    if cpu_offload and device != "cpu":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(leave=False, desc=desc, disable=progress_disabled(progress))
    return pipe
