"""The one weights resolver of the learned metrics (LPIPS, DISTS): where an ImageNet backbone comes from.

LPIPS and DISTS measure distances between the features of an ImageNet classifier (AlexNet, VGG16,
SqueezeNet). Their own calibration (LPIPS' linear layers, DISTS' alpha/beta) ships inside their wheels;
the backbone does not and is never downloaded by m3cvc. It is looked up in this order:

1. an explicit file (``--lpips-backbone PATH`` / ``--dists-backbone PATH``); a path that does not exist
   is an error of its own, never silently replaced by another file;
2. the folder named by ``$M3CVC_WEIGHTS``, holding ``alexnet-features.pth`` / ``vgg16-features.pth`` /
   ``squeezenet1_1-features.pth`` (torchvision ``features.*`` state dicts, the layout of the weights
   folder this project was developed with);
3. torchvision's own download cache, ``$TORCH_HOME/hub/checkpoints/<torchvision file name>`` (what a
   user who ever ran ``torchvision.models.alexnet(weights="DEFAULT")`` with internet already has).

A file holds either only the ``features.*`` tensors or torchvision's whole classifier state dict (then
only ``features.*`` is used). Every tensor the metric's network needs must be present with the right
shape, so a wrong or damaged file makes the metric unavailable instead of silently random.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

ENV_FOLDER = "M3CVC_WEIGHTS"

# backbone -> (file name in $M3CVC_WEIGHTS, torchvision weights enum, torchvision cache file name)
BACKBONES: dict[str, tuple[str, str, str]] = {
    "alex": ("alexnet-features.pth", "AlexNet_Weights", "alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-features.pth", "VGG16_Weights", "vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1-features.pth", "SqueezeNet1_1_Weights", "squeezenet1_1-b8a52dc0.pth"),
}


class WeightsUnavailable(Exception):
    """No usable weights file; the message is one line saying where it looked and how to fix it."""


@dataclass(frozen=True)
class ResolvedWeights:
    """A backbone file and how it was found (``option``, ``$M3CVC_WEIGHTS`` or ``torch cache``)."""

    net: str
    path: Path
    source: str

    def describe(self) -> dict[str, Any]:
        return {"backbone": self.net, "path": str(self.path), "found_by": self.source, "sha256": _sha256(self.path)}


_SHA: dict[Path, str] = {}


def _sha256(path: Path) -> str:
    """Short content hash of a weights file (recorded in results so numbers can be traced to a file)."""
    if path not in _SHA:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA[path] = h.hexdigest()[:16]
    return _SHA[path]


def torch_cache_file(net: str) -> Path:
    """torchvision's cache path of the ImageNet weights of backbone ``net`` (needs torch)."""
    import torch

    _, enum_name, default_name = BACKBONES[net]
    name = default_name
    try:  # the file name torchvision itself would use, when it can tell
        import torchvision.models as tvm

        name = Path(getattr(tvm, enum_name).IMAGENET1K_V1.url).name
    except (ImportError, AttributeError):
        pass
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def resolve_backbone(net: str, explicit: Optional[str] = None, option: str = "--lpips-backbone") -> ResolvedWeights:
    """Find the ImageNet backbone file of ``net`` (``alex``, ``vgg``, ``squeeze``) in the documented order.

    Raises :class:`WeightsUnavailable` with the places tried.
    """
    if net not in BACKBONES:
        raise WeightsUnavailable(f"unknown backbone {net!r} (choose {', '.join(BACKBONES)})")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"{option} {explicit} is not a file")
        return ResolvedWeights(net, path, "option")
    tried = []
    folder = os.environ.get(ENV_FOLDER, "").strip()
    if folder:
        path = Path(folder).expanduser() / BACKBONES[net][0]
        if path.is_file():
            return ResolvedWeights(net, path, f"${ENV_FOLDER}")
        tried.append(str(path))
    try:
        cache = torch_cache_file(net)
    except ImportError:
        cache = None
    if cache is not None:
        if cache.is_file():
            return ResolvedWeights(net, cache, "torch cache")
        tried.append(str(cache))
    hint = f"pass {option} PATH or set ${ENV_FOLDER} to a folder with {BACKBONES[net][0]}"
    raise WeightsUnavailable(f"no {net} ImageNet backbone weights ({'; '.join(tried) or 'nothing to try'}); {hint}")


def load_features(resolved: ResolvedWeights) -> dict[str, Any]:
    """The ``features.*`` tensors of a resolved file (CPU), or :class:`WeightsUnavailable`."""
    import torch

    try:
        state = torch.load(resolved.path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged, empty or foreign file: say so in one line
        raise WeightsUnavailable(
            f"cannot read {resolved.path} as a torch state dict ({type(exc).__name__}; empty, damaged or not a checkpoint)"
        ) from None
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{resolved.path} is not a state dict")
    features = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    if not features:
        raise WeightsUnavailable(f"{resolved.path} holds no features.* tensors of a torchvision {resolved.net} model")
    return features


def copy_features(module: Any, features: dict[str, Any], key_map: dict[str, str], path: Path) -> None:
    """Load ``features[source]`` into ``module``'s parameter ``target`` for each ``target -> source``; every
    target must be found with its exact shape (then loaded strictly)."""
    target_state = module.state_dict()
    mapped = {}
    for target, source in key_map.items():
        tensor = features.get(source)
        if tensor is None or tuple(tensor.shape) != tuple(target_state[target].shape):
            raise WeightsUnavailable(f"{path} lacks {source} of shape {tuple(target_state[target].shape)}")
        mapped[target] = tensor
    unmapped = [name for name, _ in module.named_parameters() if name not in mapped]
    if unmapped:  # a parameter left at its random initialisation would make every number meaningless
        raise WeightsUnavailable(f"no source for {', '.join(unmapped[:3])} in {path}")
    for k in target_state:  # buffers that are not backbone weights (DISTS' pooling filters) keep their values
        mapped.setdefault(k, target_state[k])
    module.load_state_dict(mapped, strict=True)
