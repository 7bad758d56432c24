"""``qwen-vl``: the paper's describer, a Qwen-VL model run in-process with transformers.

``AutoProcessor`` + ``AutoModelForImageTextToText`` loaded with ``from_pretrained`` from a hub id
(the HF cache; default ``Qwen/Qwen2-VL-7B-Instruct``, also Qwen2.5-VL and Qwen3-VL ids) or a local
folder. Images go in as PIL images, clip frames as one video (T, H, W, 3); decoding is greedy.
Only imported when the backend is used, so the lite profile never imports torch.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image as PILImage

from ..config import DescribeConfig, QwenVLOptions
from ..errors import BackendError, ConfigError
from ..keyframes._torch import first_line, resolve_dtype, torch_device
from .dialogue import ChatBackend, DialogueDescriber, Image, Message, Video, dialogue_describer

ATTENTION = ("sdpa", "eager", "flash_attention_2")
VIDEO_FPS = 2.0  # the rate Qwen-VL samples videos at; clip frames are treated as sampled at this rate


def fit_pixels(frame: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downscale (area filter, aspect kept) so that height * width <= ``max_pixels``."""
    h, w = frame.shape[:2]
    if max_pixels <= 0 or h * w <= max_pixels:
        return frame
    scale = math.sqrt(max_pixels / (h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return np.asarray(PILImage.fromarray(frame).resize(size, PILImage.Resampling.BOX))


class QwenVLChat(ChatBackend):
    name = "qwen-vl"

    def __init__(self, options: QwenVLOptions = QwenVLOptions()) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if options.attn_implementation not in ATTENTION:
            raise ConfigError(f"describe.qwen_vl.attn_implementation must be one of {', '.join(ATTENTION)}")
        self.options = options
        self.model = options.model
        device = torch_device(options.device, "describe.qwen_vl.device")
        dtype = resolve_dtype(options.dtype, device, "describe.qwen_vl.dtype")
        self.device = device
        from ..hub import resolve_model

        source, local = resolve_model(options.model, "describe.qwen_vl.model", options.local_files_only)
        kw: dict[str, Any] = {"local_files_only": local}
        try:
            self.processor = AutoProcessor.from_pretrained(source, **kw)
            net = AutoModelForImageTextToText.from_pretrained(
                source, dtype=dtype, attn_implementation=options.attn_implementation, **kw
            )
        except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
            raise BackendError(
                f"cannot load the Qwen-VL model {options.model!r} ({first_line(exc)}); download it into the "
                "Hugging Face cache or set describe.qwen_vl.model to a local folder"
            ) from None
        self.net = net.to(device).eval()

    def _convert(self, messages: Sequence[Message]) -> tuple[list[dict], list[Any], list[np.ndarray]]:
        hf, images, videos = [], [], []
        limit = self.options.max_pixels
        for message in messages:
            content: list[dict[str, Any]] = []
            for part in message.content:
                if isinstance(part, str):
                    content.append({"type": "text", "text": part})
                elif isinstance(part, Image):
                    content.append({"type": "image"})
                    images.append(PILImage.fromarray(fit_pixels(part.pixels, limit)))
                elif isinstance(part, Video):
                    frames = [fit_pixels(f, limit) for f in part.frames]
                    if len(frames) % 2:  # Qwen-VL groups frames in temporal pairs
                        frames.append(frames[-1])
                    content.append({"type": "video"})
                    videos.append(np.stack(frames))
            hf.append({"role": message.role, "content": content})
        return hf, images, videos

    @torch.inference_mode()
    def chat(self, messages: Sequence[Message], max_new_tokens: int) -> str:
        hf, images, videos = self._convert(messages)
        prompt = self.processor.apply_chat_template(hf, add_generation_prompt=True, tokenize=False)
        kw: dict[str, Any] = {}
        if videos:  # frames are already sampled: no resampling; timestamps at the model's native rate
            from transformers.video_utils import VideoMetadata

            kw["do_sample_frames"] = False
            kw["video_metadata"] = [
                VideoMetadata(total_num_frames=len(v), fps=VIDEO_FPS, frames_indices=list(range(len(v)))) for v in videos
            ]
        inputs = self.processor(
            text=[prompt], images=images or None, videos=videos or None, return_tensors="pt", **kw
        ).to(self.device)
        out = self.net.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        new = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new, skip_special_tokens=True)[0].strip()

    def close(self) -> None:
        self.net = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def create(config: DescribeConfig) -> DialogueDescriber:
    """The ``qwen-vl`` describer factory (``DESCRIBERS`` entry)."""
    return dialogue_describer(config, lambda: QwenVLChat(config.qwen_vl))
