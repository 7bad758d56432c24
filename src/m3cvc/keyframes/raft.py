"""``raft``: the paper's motion term (II-A), torchvision RAFT optical flow.

``weights``: ``DEFAULT`` = torchvision's pretrained weights (downloaded once into the torch
cache), ``none`` = random initialisation (tests only: the magnitudes are meaningless), or a path
to a ``.pth`` state dict. Frames are scaled to ``working_width`` (sides multiples of 8, at least
128) and mapped to [-1, 1]; the mean flow magnitude is returned in percent of the working-resolution
diagonal (see :mod:`m3cvc.keyframes.base`). Only imported when used (needs torch/torchvision).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import BackendError, ConfigError
from ._torch import first_line, torch_device
from .base import MotionBackend, mean_flow_percent, working_size

RAFT_MIN_SIDE = 128  # 1/8-resolution features pooled 3 times by the correlation pyramid: >= 16


def _load_raft(variant: str, weights: str) -> torch.nn.Module:
    from torchvision.models import optical_flow

    builders = {
        "large": (optical_flow.raft_large, optical_flow.Raft_Large_Weights),
        "small": (optical_flow.raft_small, optical_flow.Raft_Small_Weights),
    }
    if variant not in builders:
        raise ConfigError(f"keyframes.raft.variant: unknown RAFT variant {variant!r}; choose large or small")
    build, weight_enum = builders[variant]
    if weights.lower() == "none":
        return build(weights=None, progress=False)
    if weights == "DEFAULT":
        try:
            return build(weights=weight_enum.DEFAULT, progress=False)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            raise BackendError(
                f"cannot get torchvision's pretrained RAFT-{variant} weights (not in the torch cache "
                f"and the download failed: {exc}); set keyframes.raft.weights to a local .pth file"
            ) from None
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(
            f"keyframes.raft.weights: {weights!r} is neither DEFAULT, none nor an existing .pth file"
        )
    model = build(weights=None, progress=False)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise BackendError(f"cannot load RAFT-{variant} weights from {path}: {first_line(exc)}") from None
    return model


class RaftMotion(MotionBackend):
    def __init__(
        self,
        variant: str = "large",
        weights: str = "DEFAULT",
        device: str = "cpu",
        num_flow_updates: int = 12,
        working_width: int = 512,
    ) -> None:
        if num_flow_updates < 1:
            raise ConfigError(f"keyframes.raft.num_flow_updates must be >= 1, got {num_flow_updates}")
        if working_width < RAFT_MIN_SIDE:
            raise ConfigError(f"keyframes.raft.working_width must be >= {RAFT_MIN_SIDE}, got {working_width}")
        self.device = torch_device(device, "keyframes.raft.device")
        self.num_flow_updates = int(num_flow_updates)
        self.working_width = int(working_width)
        self.model = _load_raft(variant, weights).to(self.device).eval()

    def prepare(self, frame: np.ndarray) -> torch.Tensor:
        height, width = frame.shape[:2]
        size = working_size(width, height, self.working_width, multiple=8, minimum=RAFT_MIN_SIDE)
        if size != (width, height):
            interpolation = cv2.INTER_AREA if size[0] < width else cv2.INTER_LINEAR
            frame = cv2.resize(np.ascontiguousarray(frame), size, interpolation=interpolation)
        tensor = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]
        return (tensor.float() / 127.5 - 1.0).to(self.device)

    @torch.inference_mode()
    def magnitude(self, previous: torch.Tensor, current: torch.Tensor) -> float:
        flow = self.model(previous, current, num_flow_updates=self.num_flow_updates)[-1]
        return mean_flow_percent(flow[0].permute(1, 2, 0).float().cpu().numpy())
