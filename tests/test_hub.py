"""The model resolver (m3cvc.hub): a model that is neither a local folder nor in the HF cache, with the hub
unreachable, fails in seconds with one line naming the model, its config key and the way out."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import REPO
from m3cvc.errors import BackendError
from m3cvc.hub import looks_like_path, resolve_model


def test_hub_ids_and_folders_are_told_apart(tmp_path):
    assert not looks_like_path("openai/clip-vit-base-patch32") and not looks_like_path("gpt2")
    assert looks_like_path("/models/clip") and looks_like_path("./clip") and looks_like_path("~/m") and looks_like_path("a/b/c")
    assert resolve_model(str(tmp_path), "keyframes.clip.model") == (str(tmp_path), True)
    with pytest.raises(BackendError, match=r"keyframes.clip.model: the local folder /no/such/clip does not exist"):
        resolve_model("/no/such/clip", "keyframes.clip.model")


def test_a_cached_hub_id_loads_offline_and_an_uncached_one_fails_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    from m3cvc import hub

    cache = tmp_path / "hub"
    snap = cache / "models--org--tiny" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (cache / "models--org--tiny" / "refs").mkdir()
    (cache / "models--org--tiny" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "_reachable", {})
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert resolve_model("org/tiny", "describe.qwen_vl.model") == ("org/tiny", True)  # from the cache, no network
    with pytest.raises(BackendError) as err:
        resolve_model("org/absent", "describe.qwen_vl.model")
    message = str(err.value)
    assert "model org/absent (describe.qwen_vl.model) is not in the HF cache" in message
    assert "cannot be reached" in message and "local folder" in message and "\n" not in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="HF_HUB_OFFLINE is set"):
        resolve_model("org/absent", "describe.qwen_vl.model")


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "http://10.255.255.1:81"])  # refused / silent
def test_full_profile_offline_fails_fast_in_one_line(endpoint, small_video, tmp_path):
    pytest.importorskip("transformers")
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=endpoint, PYTHONPATH=str(REPO / "src"))
    env.pop("HF_HUB_OFFLINE", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "m3cvc", "encode", str(small_video), "-o", str(tmp_path / "o.m3c"),
                           "--profile", "full"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    seconds = time.perf_counter() - start
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "openai/clip-vit-base-patch32 (keyframes.clip.model)" in lines[0] and "local folder" in lines[0]
    assert seconds < 30  # the libraries' own retries take minutes
    assert not (tmp_path / "o.m3c").exists()


def test_full_profile_model_stages_default_to_device_auto_resolved_in_one_place():
    torch = pytest.importorskip("torch")
    from m3cvc.config import load_config
    from m3cvc.executors import model_devices
    from m3cvc.keyframes._torch import resolve_device, torch_device

    full = load_config(profile="full")
    assert set(model_devices(full)) == {"auto"}  # CLIP, RAFT, Qwen-VL, vq-diffusion, video diffusion
    here = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == here and torch_device("auto", "k").type == here
    assert resolve_device("cuda:1") == "cuda:1"


def test_stored_model_paths_are_absolute_and_devices_are_checked(tmp_path, monkeypatch):
    from m3cvc.devices import check_device
    from m3cvc.errors import ConfigError
    from m3cvc.hub import stored_model_path

    (tmp_path / "models" / "sd").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert stored_model_path("models/sd") == str(tmp_path / "models" / "sd")
    assert stored_model_path("taef2:models/sd") == "taef2:" + str(tmp_path / "models" / "sd")
    assert stored_model_path("org/absent-model") == "org/absent-model"  # a hub id stays as given
    for good in ("auto", "cpu", "cuda", "cuda:3", "mps"):
        assert check_device(good, "k") == good
    for bad in ("meta", "cuda:x", "cpu:0", "", "gpu"):
        with pytest.raises(ConfigError, match="k: invalid device"):
            check_device(bad, "k")
