"""Learned perceptual metrics: LPIPS and CLIP-sim, only ever from real pretrained weights.

LPIPS (Zhang et al. 2018) uses the ``lpips`` package: its linear calibration layers ship inside the
package; the ImageNet backbone (AlexNet by default) is read from a local file, never downloaded: either
``--lpips-backbone PATH`` (a torchvision state dict) or torchvision's cache file in
``$TORCH_HOME/hub/checkpoints/`` (e.g. ``alexnet-owt-7be5be79.pth``). Frames go in as RGB scaled to
[-1, 1]; the sequence value is the mean over frames (lower is better).

CLIP-sim is the cosine similarity between the CLIP image embeddings of an original frame and its
decoded frame, averaged over frames (higher is better). The model (default
``openai/clip-vit-base-patch32``, ``--clip-model`` for another hub id or a local folder) is loaded with
``from_pretrained`` from the HF cache or the folder, through the same loader as the ``clip`` keyframe
backend.

When weights or packages are missing, the metric reports itself unavailable with a one-line reason;
the harness prints it once and stores ``null``. Nothing is ever computed with a random network.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

_TV_WEIGHTS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}


class PerceptualMetric(ABC):
    """A metric needing a network; loaded on first use."""

    name = ""

    def __init__(self) -> None:
        self._loaded = False
        self.reason: Optional[str] = None  # why it is unavailable

    def available(self) -> bool:
        if not self._loaded:
            self._loaded = True
            try:
                self._load()
            except _Unavailable as exc:
                self.reason = str(exc)
        return self.reason is None

    @abstractmethod
    def _load(self) -> None:
        """Load the network or raise :class:`_Unavailable`."""

    @abstractmethod
    def _measure(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> float: ...

    def measure(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> Optional[float]:
        """Mean over frames, or None when unavailable."""
        if not self.available():
            return None
        return float(self._measure(refs, decs))

    def describe(self) -> dict[str, Any]:
        return {"available": self.available(), "reason": self.reason}


class _Unavailable(Exception):
    pass


def _torch():
    try:
        import torch
    except ImportError:
        raise _Unavailable("needs torch (pip install 'm3cvc[models]')") from None
    return torch


def backbone_cache_file(net: str) -> Path:
    """torchvision's cache path of the ImageNet weights LPIPS's backbone ``net`` uses."""
    torch = _torch()
    try:
        import torchvision.models as tvm
    except ImportError:
        raise _Unavailable("needs torchvision") from None
    weights = getattr(tvm, _TV_WEIGHTS[net]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def load_backbone_into(model: Any, state: dict[str, Any]) -> None:
    """Copy torchvision ``features.I.*`` weights into lpips' ``net.sliceK.I.*`` modules (all must match)."""
    target = model.net.state_dict()
    mapped = {}
    for key in target:
        _, index, param = key.split(".", 2)
        source = f"features.{index}.{param}"
        if source not in state or state[source].shape != target[key].shape:
            raise _Unavailable(f"backbone weights lack {source} of the expected shape")
        mapped[key] = state[source]
    model.net.load_state_dict(mapped, strict=True)


class Lpips(PerceptualMetric):
    name = "lpips"

    def __init__(self, net: str = "alex", backbone: Optional[str] = None, device: str = "cpu", batch: int = 8) -> None:
        super().__init__()
        if net not in _TV_WEIGHTS:
            from ..errors import ConfigError

            raise ConfigError(f"LPIPS net must be one of {', '.join(_TV_WEIGHTS)}, got {net!r}")
        self.net, self.backbone, self.device, self.batch = net, backbone, device, batch
        self.model: Any = None

    def _load(self) -> None:
        torch = _torch()
        try:
            import lpips
        except ImportError:
            raise _Unavailable("needs the lpips package (pip install lpips)") from None
        path = Path(self.backbone) if self.backbone else backbone_cache_file(self.net)
        if not path.is_file():
            raise _Unavailable(
                f"no {self.net} ImageNet backbone weights at {path} (pass --lpips-backbone PATH to a torchvision state dict)"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or foreign file
            raise _Unavailable(f"cannot read LPIPS backbone {path}: {exc}") from None
        with warnings.catch_warnings():  # lpips passes torchvision a deprecated ``pretrained=False``
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=self.net, pretrained=True, pnet_rand=True, verbose=False)
        load_backbone_into(model, state)
        self.model = model.to(self.device).eval()

    def _measure(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> float:
        torch = _torch()
        values = []
        with torch.inference_mode():
            for i in range(0, len(refs), self.batch):
                a = _to_tensor(torch, refs[i : i + self.batch], self.device)
                b = _to_tensor(torch, decs[i : i + self.batch], self.device)
                values.append(self.model(a, b).flatten().double().cpu())
        return float(torch.cat(values).mean())


def _to_tensor(torch: Any, frames: Sequence[np.ndarray], device: str) -> Any:
    arr = np.stack([np.asarray(f) for f in frames]).astype(np.float32)
    return (torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0).to(device)


class ClipSim(PerceptualMetric):
    name = "clip_sim"

    def __init__(self, model: str = "openai/clip-vit-base-patch32", device: str = "cpu", local_files_only: bool = True) -> None:
        super().__init__()
        self.model_id, self.device, self.local_files_only = model, device, local_files_only
        self.backend: Any = None

    def _load(self) -> None:
        _torch()
        try:
            from ..keyframes.clip import ClipSemantic
        except ImportError as exc:
            raise _Unavailable(f"needs transformers ({exc})") from None
        from ..errors import M3cvcError

        try:
            self.backend = ClipSemantic(model=self.model_id, device=self.device, local_files_only=self.local_files_only)
        except M3cvcError as exc:
            raise _Unavailable(str(exc)) from None

    def _measure(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> float:
        sims = []
        for a, b in zip(refs, decs):
            ea, eb = self.backend.embed(a), self.backend.embed(b)
            sims.append(float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-12)))
        return float(np.mean(sims))
