"""``openai``: the dialogue served by any OpenAI-compatible ``/v1/chat/completions`` server.

Works with vLLM (``vllm serve Qwen/Qwen2-VL-7B-Instruct``), Ollama, LM Studio or a hosted API.
Images (and the frames sampled from a clip) are sent as base64 ``data:`` URLs; decoding is greedy
(``temperature`` 0, fixed ``seed``). The base URL and model come from the options or from the
environment (``M3CVC_OPENAI_BASE_URL``, ``M3CVC_OPENAI_MODEL``); the API key, if any, from the
environment variable named by ``api_key_env``. Connection errors, timeouts, 429 and 5xx answers
are retried with exponential backoff; then a one-line :class:`BackendError` says what failed.
Standard library only (no extra dependency).
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Sequence

import numpy as np

from ..config import DescribeConfig, OpenAIOptions
from ..errors import BackendError, ConfigError
from .dialogue import ChatBackend, DialogueDescriber, Image, Message, Video, dialogue_describer

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def image_data_url(frame: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> str:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    if fmt == "png":
        PILImage.fromarray(frame).save(buf, format="PNG")
    else:
        PILImage.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return f"data:image/{fmt};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


class _Retryable(Exception):
    """A failure worth another attempt (its message is the reason)."""


class OpenAIChat(ChatBackend):
    name = "openai"

    def __init__(self, options: OpenAIOptions = OpenAIOptions(), sleep: Callable[[float], None] = time.sleep) -> None:
        if options.image_format not in ("jpeg", "png"):
            raise ConfigError("describe.openai.image_format must be jpeg or png")
        if options.timeout <= 0 or options.retries < 0 or options.backoff < 0:
            raise ConfigError("describe.openai: timeout must be > 0, retries and backoff >= 0")
        self.options = options
        self.base_url = (os.environ.get("M3CVC_OPENAI_BASE_URL") or options.base_url).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"describe.openai.base_url must be an http(s) URL, got {self.base_url!r}")
        self.model = os.environ.get("M3CVC_OPENAI_MODEL") or options.model
        self.api_key = os.environ.get(options.api_key_env, "") if options.api_key_env else ""
        self._sleep = sleep

    # -- request body
    def _part(self, part: Any) -> list[dict[str, Any]]:
        o = self.options
        if isinstance(part, str):
            return [{"type": "text", "text": part}]
        frames = [part.pixels] if isinstance(part, Image) else list(part.frames) if isinstance(part, Video) else []
        return [{"type": "image_url", "image_url": {"url": image_data_url(f, o.image_format, o.jpeg_quality)}}
                for f in frames]

    def request_body(self, messages: Sequence[Message], max_new_tokens: int) -> dict[str, Any]:
        out = []
        for m in messages:
            if all(isinstance(p, str) for p in m.content):
                out.append({"role": m.role, "content": m.text})
            else:
                out.append({"role": m.role, "content": [x for p in m.content for x in self._part(p)]})
        return {"model": self.model, "messages": out, "max_tokens": max_new_tokens, "temperature": 0,
                "top_p": 1, "seed": 0, "stream": False}

    # -- transport
    def _post(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.options.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code in RETRY_STATUS:
                raise _Retryable(f"HTTP {exc.code}{detail}") from None
            raise BackendError(f"the OpenAI-compatible server at {self.base_url} refused the request: "
                               f"HTTP {exc.code}{detail}") from None
        except (socket.timeout, TimeoutError):
            raise _Retryable(f"no answer within {self.options.timeout:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise _Retryable(f"no answer within {self.options.timeout:g} s") from None
            raise _Retryable(f"cannot connect ({reason})") from None
        except (ConnectionError, OSError) as exc:
            raise _Retryable(f"connection failed ({exc})") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise BackendError(f"the server at {self.base_url} did not answer with JSON") from None

    def chat(self, messages: Sequence[Message], max_new_tokens: int) -> str:
        body = json.dumps(self.request_body(messages, max_new_tokens)).encode("utf-8")
        o = self.options
        for attempt in range(o.retries + 1):
            try:
                return _answer_text(self._post(body), self.base_url)
            except _Retryable as exc:
                if attempt == o.retries:
                    raise BackendError(
                        f"the OpenAI-compatible server at {self.base_url} failed after {attempt + 1} attempt(s): "
                        f"{exc} (is it running? set describe.openai.base_url or M3CVC_OPENAI_BASE_URL)"
                    ) from None
                self._sleep(o.backoff * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read() or b"{}")
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
    except (ValueError, AttributeError, OSError):
        message = None
    return f": {str(message).splitlines()[0][:200]}" if message else ""


def _answer_text(data: Any, base_url: str) -> str:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise BackendError(f"the server at {base_url} sent no choices[0].message.content") from None
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise BackendError(f"the server at {base_url} sent a non-text answer")
    return content.strip()


def create(config: DescribeConfig) -> DialogueDescriber:
    """The ``openai`` describer factory (``DESCRIBERS`` entry)."""
    return dialogue_describer(config, lambda: OpenAIChat(config.openai))
