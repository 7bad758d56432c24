"""Tiny random Qwen2-VL / Qwen2.5-VL models built offline for the describer tests.

A byte-level BPE tokenizer is trained in-process with ``tokenizers`` and wrapped in a
PreTrainedTokenizerFast with the Qwen special tokens and a chat template; the processor is built
from Qwen2VLImageProcessor / Qwen2VLVideoProcessor. Everything is saved with save_pretrained so
the real ``qwen-vl`` backend loads it from the folder like a downloaded model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|image_pad|>", "<|video_pad|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "You are a helpful assistant.",
    "Describe the main objects in this image and the background.",
    "The image shows a man riding a red bicycle on a street with cars and trees.",
    "Compared to the previous keyframe, the camera moved to the left.",
    "The video shows a dog running across a green field toward the camera.",
]


# Qwen2-VL-7B-Instruct's published architecture (its config.json), for the GPU benchmark
QWEN2_VL_7B_TEXT = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                        num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]})
QWEN2_VL_7B_VISION = dict(depth=32, embed_dim=1280, hidden_size=3584, mlp_ratio=4, num_heads=16, patch_size=14,
                          spatial_merge_size=2, temporal_patch_size=2)


def build_tiny_qwen(folder: Path, kind: str = "qwen2_vl", full_size: bool = False) -> Path:
    """Write a tiny random ``kind`` (qwen2_vl | qwen2_5_vl | qwen3_vl) model + processor into ``folder``;
    ``full_size`` (qwen2_vl only): Qwen2-VL-7B's architecture, still random, with the tiny tokenizer
    (ids it does not know decode to nothing)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        additional_special_tokens=SPECIAL[1:])
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}

    image_processor, video_processor, text_extra = Qwen2VLImageProcessor(), Qwen2VLVideoProcessor(), {}
    if kind == "qwen3_vl":
        from transformers import Qwen3VLConfig as Config
        from transformers import Qwen3VLForConditionalGeneration as Model
        from transformers import Qwen3VLProcessor as Processor
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=16,
                      spatial_merge_size=2, temporal_patch_size=2, deepstack_visual_indexes=[1],
                      num_position_embeddings=256)
        image_processor, video_processor = Qwen2VLImageProcessor(patch_size=16), Qwen3VLVideoProcessor()
        text_extra = {"head_dim": 16}
    elif kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model
        from transformers import Qwen2_5_VLProcessor as Processor

        vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                      fullatt_block_indexes=[0], window_size=112, patch_size=14, spatial_merge_size=2,
                      temporal_patch_size=2)
    else:
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model
        from transformers import Qwen2VLProcessor as Processor

        vision = dict(depth=1, embed_dim=32, hidden_size=32, mlp_ratio=2, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2)
    text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                **text_extra)
    if full_size:
        if kind != "qwen2_vl":
            raise ValueError("full_size is only defined for qwen2_vl")
        text.update(QWEN2_VL_7B_TEXT)
        vision = dict(QWEN2_VL_7B_VISION)
    config = Config(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                    video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                    vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    model = Model(config).eval()
    processor = Processor(image_processor=image_processor, tokenizer=tokenizer,
                          video_processor=video_processor, chat_template=CHAT_TEMPLATE)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------
# a local OpenAI-compatible server
class FakeVLM:
    """State of :func:`fake_vlm_server`: the requests it saw; ``script`` injects failures."""

    def __init__(self, image_size: tuple[int, int]) -> None:
        self.image_size = image_size  # (width, height) every image must have
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.script: dict[int, tuple[int, float]] = {}  # request number -> (HTTP status, delay seconds)
        self.url = ""

    def answer(self, body: dict, number: int) -> str:
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else " ".join(p["text"] for p in last if p["type"] == "text")
        for key in ("Summarize", "previous keyframe", "small details", "primary motion", "objects"):
            if key.lower() in text.lower():
                return f"answer to {key} #{number}"
        return f"answer #{number}"

    def check_images(self, body: dict) -> int:
        """Every image part must be a base64 JPEG data URL that decodes; returns how many there are."""
        import base64
        import io

        from PIL import Image

        count = 0
        for message in body["messages"]:
            if isinstance(message["content"], str):
                continue
            for part in message["content"]:
                assert part["type"] in ("text", "image_url"), part["type"]
                if part["type"] == "image_url":
                    url = part["image_url"]["url"]
                    assert url.startswith("data:image/jpeg;base64,"), url[:40]
                    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
                    assert img.size == self.image_size, img.size
                    count += 1
        return count

    def respond(self, body: dict) -> tuple[int, dict]:
        import time

        number = len(self.requests)
        self.requests.append(body)
        status, delay = self.script.get(number, (200, 0.0))
        time.sleep(delay)
        if status != 200:
            return status, {"error": {"message": f"scripted failure {status}"}}
        try:
            self.check_images(body)
        except AssertionError as exc:  # surfaces in the test as a BackendError naming the check
            return 400, {"error": {"message": f"check failed: {exc}"}}
        answer = self.answer(body, number)
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}


@contextlib.contextmanager
def fake_vlm_server(image_size: tuple[int, int] = (48, 32)) -> Iterator[FakeVLM]:
    """A real HTTP server on 127.0.0.1 (ephemeral port, own thread) speaking /v1/chat/completions."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    vlm = FakeVLM(image_size)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output quiet
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            vlm.headers.append(dict(self.headers))
            if self.path != "/v1/chat/completions":
                status, reply = 404, {"error": {"message": f"no route {self.path}"}}
            else:
                status, reply = vlm.respond(body)
            payload = json.dumps(reply).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    vlm.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield vlm
    finally:
        httpd.shutdown()
        httpd.server_close()
