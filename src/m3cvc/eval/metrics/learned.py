"""Learned perceptual metrics: LPIPS, DISTS and CLIP-sim, only ever from real pretrained weights.

LPIPS (Zhang et al. 2018) through the ``lpips`` package: its linear calibration layers (version 0.1)
ship inside the package; the ImageNet backbone (``alex`` by default, ``vgg``, ``squeeze``) comes from
:func:`m3cvc.eval.metrics.weights.resolve_backbone` and is loaded into the package's network, built with
``pnet_rand=True`` so it never downloads. Frames go in as RGB scaled to [-1, 1], full resolution.

DISTS (Ding et al. 2020) through ``DISTS_pytorch``: its alpha/beta ship inside the package
(``DISTS_pytorch/weights.pt``); the VGG16 backbone comes from the same resolver (``--dists-backbone``,
``$M3CVC_WEIGHTS/vgg16-features.pth``, torch cache). The package would download torchvision's VGG16 at
construction; m3cvc builds it with an untrained torchvision VGG16 in its place and then copies the
resolved weights into every convolution (all must be present). Frames go in as RGB in [0, 1], full
resolution (no resize).

Both reproduce the published calibration values of pyiqa's ``ResultsCalibra`` pairs to 4 decimals
(``tests/test_metrics_learned.py``). Per-frame values are returned; the sequence value is their
mean (lower is better).

CLIP-sim is the cosine similarity between the CLIP image embeddings of an original frame and its
decoded frame (higher is better). The model (default ``openai/clip-vit-base-patch32``; ``--clip-model``
for another hub id or a local folder) is loaded with ``from_pretrained`` from the HF cache or the folder
through the loader of the ``clip`` keyframe backend.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from .suite import MetricEngine, MetricValue, Unavailable, mean_value
from .weights import WeightsUnavailable, copy_features, load_features, resolve_backbone

_NEEDS = "install torch, then pip install 'm3cvc[eval]'"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise Unavailable(f"needs torch ({_NEEDS})") from None
    return torch


def _frames_to_tensor(torch: Any, frames: Sequence[np.ndarray], device: str, lo: float, hi: float) -> Any:
    """``(N, 3, H, W)`` float32 in ``[lo, hi]`` from RGB uint8 frames."""
    arr = torch.from_numpy(np.stack([np.asarray(f) for f in frames])).to(device)
    return arr.permute(0, 3, 1, 2).float() * ((hi - lo) / 255.0) + lo


class _BackboneMetric(MetricEngine):
    """A network on ImageNet features, built from resolved backbone weights."""

    package = ""
    option = ""

    def backbone_net(self) -> str:
        raise NotImplementedError

    def explicit_backbone(self) -> Any:
        raise NotImplementedError

    def build(self, features: dict[str, Any], path: Any) -> Any:
        raise NotImplementedError

    def load(self) -> None:
        torch = _torch()
        try:
            __import__(self.package)
        except ImportError:
            raise Unavailable(f"needs the {self.package} package ({_NEEDS})") from None
        try:
            self.weights = resolve_backbone(self.backbone_net(), self.explicit_backbone(), self.option)
            features = load_features(self.weights)
            with torch.random.fork_rng(devices=[]):  # building the nets draws random numbers: keep the caller's stream
                self.model = self.build(features, self.weights.path).to(self.options.device).eval()
        except WeightsUnavailable as exc:
            raise Unavailable(str(exc)) from None

    def info(self, name: str) -> dict[str, Any]:
        from importlib.metadata import version

        return {"package": f"{self.package} {version(self.package)}", **self.weights.describe()}



class Lpips(_BackboneMetric):
    package = "lpips"
    option = "--lpips-backbone"

    def backbone_net(self) -> str:
        return self.options.lpips_net  # an unknown net is refused by the resolver

    def explicit_backbone(self) -> Any:
        return self.options.lpips_backbone

    def build(self, features: dict[str, Any], path: Any) -> Any:
        import lpips

        with warnings.catch_warnings():  # lpips passes torchvision a deprecated ``pretrained=False``
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=self.options.lpips_net, pretrained=True, pnet_rand=True, verbose=False)
        # lpips' net.sliceK.I.<param> is torchvision's features.I.<param>
        key_map = {k: "features." + k.split(".", 1)[1] for k, _ in model.net.named_parameters()}
        copy_features(model.net, features, key_map, path)
        return model

    def info(self, name: str) -> dict[str, Any]:
        return {"net": self.options.lpips_net, "lpips_version": "0.1", **super().info(name)}

    def compute(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> dict[str, MetricValue]:
        """Batches of ``options.batch`` frame pairs, RGB scaled to [-1, 1]."""
        torch = _torch()
        out: list[float] = []
        step = max(1, self.options.batch)
        with torch.inference_mode():
            for i in range(0, len(refs), step):
                a = _frames_to_tensor(torch, refs[i : i + step], self.options.device, -1.0, 1.0)
                b = _frames_to_tensor(torch, decs[i : i + step], self.options.device, -1.0, 1.0)
                out += self.model(a, b).reshape(-1).double().cpu().tolist()
        return {"lpips": mean_value(out)}


@contextmanager
def _untrained_vgg16(models: Any) -> Iterator[None]:
    """Inside the block, ``models.vgg16(pretrained=True)`` builds an untrained VGG16 (no download)."""
    original = models.vgg16

    def vgg16(*args: Any, **kwargs: Any) -> Any:
        return original(weights=None)

    models.vgg16 = vgg16
    try:
        yield
    finally:
        models.vgg16 = original


class Dists(_BackboneMetric):
    package = "DISTS_pytorch"
    option = "--dists-backbone"

    def backbone_net(self) -> str:
        return "vgg"

    def explicit_backbone(self) -> Any:
        return self.options.dists_backbone

    def build(self, features: dict[str, Any], path: Any) -> Any:
        from importlib.resources import files

        import torch
        from DISTS_pytorch import DISTS_pt

        with _untrained_vgg16(DISTS_pt.models), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = DISTS_pt.DISTS(load_weights=False)
        calib = torch.load(str(files("DISTS_pytorch") / "weights.pt"), map_location="cpu", weights_only=True)
        model.alpha.data, model.beta.data = calib["alpha"], calib["beta"]
        # DISTS' stageK is an nn.Sequential whose children keep VGG16's indices: stageK.I.<param> is
        # torchvision's features.I.<param> (the L2 pooling layers have a fixed filter buffer, no parameters)
        convs = 0
        for k in range(1, 6):
            stage = getattr(model, f"stage{k}")
            key_map = {name: f"features.{name}" for name, _ in stage.named_parameters()}
            copy_features(stage, features, key_map, path)
            convs += len(key_map) // 2
        if convs != 13:
            raise WeightsUnavailable(f"unexpected DISTS_pytorch layout ({convs} convolutions, VGG16 has 13)")
        return model

    def load(self) -> None:
        super().load()
        self.cache = FeatureCache(int(self.options.dists_cache_gib * 2**30))

    def compute(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> dict[str, MetricValue]:
        """One frame at a time (the fastest on CPU); the reference's VGG features come from the cache when
        an earlier rate point of the same clip computed them (half the work). The distance itself is
        ``DISTS_pt.DISTS.forward``, unchanged: only its ``forward_once`` of the reference is served from
        the cache, so cached and uncached values are identical."""
        torch = _torch()
        out: list[float] = []
        self.cache.new_round()
        with torch.inference_mode():
            for ref, dec in zip(refs, decs):
                key = frame_key(ref)
                ref_features = self.cache.get(key)
                if ref_features is None:
                    ref_features = self.model.forward_once(_frames_to_tensor(torch, [ref], self.options.device, 0.0, 1.0))
                    self.cache.put(key, ref_features)
                b = _frames_to_tensor(torch, [dec], self.options.device, 0.0, 1.0)
                out.append(float(self._forward_with_reference(ref_features, b)))
        return {"dists": mean_value(out)}

    def _forward_with_reference(self, ref_features: list[Any], b: Any) -> Any:
        model = self.model
        compute_features = type(model).forward_once
        served: list[bool] = []

        def forward_once(x: Any) -> Any:  # DISTS.forward calls it for the reference first, then for b
            if not served:
                served.append(True)
                return ref_features
            return compute_features(model, x)

        model.forward_once = forward_once
        try:
            # DISTS_pt.DISTS(x, y) is the distance of reference x (its features[0] is x itself) and distorted y
            return model(ref_features[0], b, batch_average=False)
        finally:
            del model.forward_once


def frame_key(frame: np.ndarray) -> bytes:
    """Content key of a frame (shape + BLAKE2b of its bytes): equal frames share cached features."""
    import hashlib

    arr = np.ascontiguousarray(frame)
    return repr(arr.shape).encode() + hashlib.blake2b(arr.tobytes(), digest_size=16).digest()


class FeatureCache:
    """Network features of reference frames, bounded in bytes.

    The eval harness measures every rate point of a clip against the same reference frames, so their
    features are computed once per clip when they fit. A full cache makes room only by evicting entries
    not used in the current round (a round = one ``compute`` call = one rate point): features of an earlier
    clip go, while a clip longer than the budget keeps its first frames cached instead of thrashing.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.entries: dict[bytes, tuple[list[Any], int, int]] = {}  # key -> (features, bytes, last round)
        self.used = 0
        self.round = 0

    def new_round(self) -> None:
        self.round += 1

    def get(self, key: bytes) -> Any:
        entry = self.entries.get(key)
        if entry is None:
            return None
        self.entries[key] = (entry[0], entry[1], self.round)
        return entry[0]

    def put(self, key: bytes, features: list[Any]) -> None:
        size = sum(t.numel() * t.element_size() for t in features)
        if self.used + size > self.budget:
            for k in [k for k, (_, _, last) in self.entries.items() if last < self.round]:
                self.used -= self.entries.pop(k)[1]
                if self.used + size <= self.budget:
                    break
        if self.used + size <= self.budget:
            self.entries[key] = (features, size, self.round)
            self.used += size


class ClipSim(MetricEngine):
    def load(self) -> None:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise Unavailable("needs torch and transformers (install torch, then pip install 'm3cvc[models]')") from None
        try:
            from ...keyframes.clip import ClipSemantic
        except ImportError as exc:
            raise Unavailable(f"needs transformers ({exc}; pip install 'm3cvc[models]')") from None
        from ...errors import M3cvcError

        try:
            self.backend = ClipSemantic(
                model=self.options.clip_model, device=self.options.device, local_files_only=True, setting="--clip-model",
                offline_reason="metrics never download models",
            )
        except M3cvcError as exc:
            raise Unavailable(str(exc)) from None

    def info(self, name: str) -> dict[str, Any]:
        return {"model": self.options.clip_model}

    def compute(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> dict[str, MetricValue]:
        sims = []
        for a, b in zip(refs, decs):
            ea, eb = self.backend.embed(a), self.backend.embed(b)
            sims.append(float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-12)))
        return {"clip_sim": mean_value(sims)}
