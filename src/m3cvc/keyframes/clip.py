"""``clip``: the paper's semantic term (II-A), the cosine of CLIP image embeddings.

Loads ``transformers.CLIPModel`` and its processor with ``from_pretrained`` from a hub id (the
HF cache; default ``openai/clip-vit-base-patch32``) or a local folder. Only imported when the
backend is used, so the lite profile never imports torch.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BackendError
from ._torch import first_line, resolve_dtype, torch_device
from .base import SemanticBackend


class ClipSemantic(SemanticBackend):
    def __init__(
        self,
        model: str = "openai/clip-vit-base-patch32",
        device: str = "auto",
        dtype: str = "auto",
        local_files_only: bool = False,
        setting: str = "keyframes.clip.model",
        offline_reason: str = "local_files_only is set",
    ) -> None:
        """``setting``: how the user sets ``model`` (a config key or an option), and ``offline_reason``: why
        nothing is downloaded with ``local_files_only``; both named in errors."""
        self.model_id = model
        self.device = torch_device(device, "keyframes.clip.device")
        self.dtype = resolve_dtype(dtype, self.device, "keyframes.clip.dtype")
        from transformers import AutoProcessor, CLIPModel

        from ..hub import resolve_model

        source, local_files_only = resolve_model(model, setting, local_files_only, offline_reason=offline_reason)
        try:
            self.processor = AutoProcessor.from_pretrained(source, local_files_only=local_files_only)
            self.model = CLIPModel.from_pretrained(
                source, local_files_only=local_files_only, dtype=self.dtype
            )
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"cannot load CLIP model {model!r} ({setting}: a hub id in the HF cache or a local folder "
                f"with a CLIPModel and its processor): {first_line(exc)}"
            ) from None
        self.model.to(self.device).eval()

    @torch.inference_mode()
    def embed(self, frame: np.ndarray) -> np.ndarray:
        inputs = self.processor(images=[np.ascontiguousarray(frame)], return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        out = self.model.get_image_features(pixel_values=pixels)
        features = out if torch.is_tensor(out) else out.pooler_output  # transformers 5: an output object
        return features[0].float().cpu().numpy().astype(np.float64)
