"""Executors (local, process pool, a real local Ray cluster): the same bytes and metrics as a sequential
run, failures reported without stopping the others, bounded retries, resume after an interruption,
models loaded once per worker; and the commands on top (eval, batch encode / decode, dataset build)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import synthetic_frames, write_video
from m3cvc.cli import main as cli_main
from m3cvc.errors import InputError
from m3cvc.eval.results import without_timings as _strip
from m3cvc.executors import LocalExecutor, Resources, Task, create_executor, worker_cache
from m3cvc.executors.process import ProcessExecutor

W, H = 96, 64


# ----------------------------------------------------------------- task functions (module level)
def square(x: int) -> int:
    return x * x


def bad_input(x: int) -> int:
    raise InputError(f"input {x} is broken")


def flaky(marker: str) -> str:
    """Fails unexpectedly until it has been called twice (a marker file counts the calls)."""
    path = Path(marker)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls < 3:
        raise RuntimeError(f"transient failure {calls}")
    return f"ok after {calls}"


def crash_once(marker: str) -> int:
    """Kills its worker process the first time (as an out-of-memory kill would)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("crashed")
        os._exit(3)
    return os.getpid()


def cached_pid(key: str) -> tuple[int, int]:
    """(pid, object id) of something built once per worker process."""
    return os.getpid(), id(worker_cache(("test", key), lambda: object()))


# ----------------------------------------------------------------------------- the executors
@pytest.mark.parametrize("name", ["local", "process"])
def test_executor_runs_every_task_reports_failures_and_retries_only_unexpected_ones(name, tmp_path):
    executor = LocalExecutor() if name == "local" else ProcessExecutor(2, gpus=[])
    tasks = [Task(f"sq{i}", square, (i,)) for i in range(5)]
    tasks.insert(2, Task("bad", bad_input, (7,)))
    tasks.append(Task("flaky", flaky, (str(tmp_path / "flaky"),)))
    seen = []
    with executor:
        outcomes = executor.run(tasks, seen.append, retries=2, progress=False)
    assert [o.task.key for o in outcomes] == [t.key for t in tasks]  # task order, whatever finished first
    assert sorted(o.task.key for o in seen) == sorted(t.key for t in tasks)  # every outcome reached the driver
    values = {o.task.key: o.value for o in outcomes if o.ok}
    assert values == {**{f"sq{i}": i * i for i in range(5)}, "flaky": "ok after 3"}
    bad = next(o for o in outcomes if o.task.key == "bad")
    assert bad.error == "InputError: input 7 is broken" and bad.attempts == 1  # a bad input is not retried
    assert next(o for o in outcomes if o.task.key == "flaky").attempts == 3
    # with fewer retries the transient failure is reported with its error
    (tmp_path / "flaky").unlink()
    with (LocalExecutor() if name == "local" else ProcessExecutor(2, gpus=[])) as executor:
        (out,) = executor.run([Task("flaky", flaky, (str(tmp_path / "flaky"),))], retries=1, progress=False)
    assert not out.ok and out.attempts == 2 and out.error.startswith("RuntimeError: transient failure 2")


def slow_square(x: int) -> int:
    import time

    time.sleep(0.3)
    return x * x


def test_process_pool_survives_a_dead_worker_and_keeps_models_per_worker(tmp_path):
    with ProcessExecutor(2, gpus=[]) as executor:
        # one worker dies while the other has a task in flight: both are retried on a new pool
        tasks = [Task("slow0", slow_square, (2,)), Task("crash", crash_once, (str(tmp_path / "m"),)),
                 Task("slow1", slow_square, (3,)), Task("slow2", slow_square, (4,))]  # fmt: skip
        outcomes = executor.run(tasks, retries=1, progress=False)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        crash = outcomes[1]
        assert crash.attempts == 2 and crash.value != os.getpid()
        assert [o.value for o in outcomes if o.task.key.startswith("slow")] == [4, 9, 16]
        pids = executor.run([Task(f"c{i}", cached_pid, ("model",)) for i in range(8)], progress=False)
    by_pid: dict[int, set[int]] = {}
    for o in pids:
        by_pid.setdefault(o.value[0], set()).add(o.value[1])
    assert os.getpid() not in by_pid and all(len(ids) == 1 for ids in by_pid.values())  # built once per worker


def test_worker_cache_keeps_the_latest_entry_of_a_slot():
    from m3cvc.executors import clear_worker_cache

    builds = []
    first = worker_cache("a", lambda: builds.append("a") or object(), slot="test-clip")
    assert worker_cache("a", lambda: builds.append("a") or object(), slot="test-clip") is first  # kept, not rebuilt
    worker_cache("b", lambda: builds.append("b") or object(), slot="test-clip")
    assert worker_cache("a", lambda: builds.append("a") or object(), slot="test-clip") is not first  # replaced by b
    assert builds == ["a", "b", "a"]
    clear_worker_cache()


def test_process_workers_are_pinned_to_gpus_round_robin():
    with ProcessExecutor(3, gpus=["0", "1"]) as executor:
        outcomes = executor.run([Task(f"t{i}", os.getenv, ("CUDA_VISIBLE_DEVICES",)) for i in range(12)], progress=False)
    assert {o.value for o in outcomes} <= {"0", "1"}


def test_executor_options_are_checked(capsys):
    from m3cvc.errors import ConfigError
    from m3cvc.executors import model_devices, task_resources
    from m3cvc.config import load_config, with_overrides

    for kwargs, message in [({"name": "local", "workers": 2}, "--workers needs"), ({"name": "process", "workers": 0}, ">= 1"),
                            ({"name": "local", "ray_address": "auto"}, "--ray-address needs --executor ray")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            create_executor(**kwargs)
    assert model_devices(load_config(profile="lite")) == []
    full = load_config(profile="full")
    assert "auto" in model_devices(full)
    seine_on_gpu = with_overrides(load_config(profile="lite"), reconstruct={"backend": "seine", "diffusion": {"device": "cuda:1"}})
    assert model_devices(seine_on_gpu) == ["cuda:1"]  # a SEINE decode task asks the executor for a GPU
    assert task_resources(model_devices(load_config(profile="lite")), LocalExecutor()) == Resources(1.0, 0.0)
    assert task_resources(["cuda:1"], LocalExecutor()) == Resources(1.0, 1.0)
    assert task_resources([], LocalExecutor(), 0.25) == Resources(1.0, 0.25)  # fractional GPUs
    assert cli_main(["batch", "encode", "x", "-o", "y", "--executor", "local", "--workers", "3"]) == 2
    assert "--workers needs --executor process or ray" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- the jobs
@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Two tiny clips (eval's dataset: a folder's own videos) and a third in a subfolder (batch jobs
    search recursively)."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "pan.y4m", synthetic_frames(12, W, H))
    write_video(root / "cut.y4m", synthetic_frames(12, W, H, cut_at=6, seed=3))
    (root / "sub").mkdir()
    write_video(root / "sub" / "other.y4m", synthetic_frames(8, W, H, seed=5))
    return root


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster of 2 CPUs, shared by the tests of this module."""
    ray = pytest.importorskip("ray", reason="pip install 'm3cvc[scale]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": str(_threads())}})  # fmt: skip
    yield ray
    ray.shutdown()


def _threads() -> int:
    from m3cvc.executors.ray_cluster import driver_threads

    return driver_threads()


def _eval(videos: Path, out: Path, *executor: str) -> int:
    return cli_main(["eval", "--dataset", str(videos), "--out", str(out), "--codecs", "m3cvc:lite,x264",
                     "--size", f"{W}x{H}", "--max-frames", "12", "--points", "x264=45,38",
                     "--points", "m3cvc:lite=0.03,0.08", "--metrics", "psnr,ms_ssim,lpips", "--keep-streams", "-q",
                     *executor])  # fmt: skip


def test_eval_on_process_pool_and_ray_equals_the_local_run(videos, ray_cluster, tmp_path):
    runs = {"local": [], "process": ["--executor", "process", "--workers", "2"], "ray": ["--executor", "ray"]}
    for name, options in runs.items():
        assert _eval(videos, tmp_path / name, *options) == 0, name
    for codec in ("m3cvc-lite.json", "x264.json"):
        docs = {n: json.loads((tmp_path / n / videos.name / codec).read_text()) for n in runs}
        assert _strip(docs["process"]) == _strip(docs["local"]) == _strip(docs["ray"]), codec
        assert sum(len(s["points"]) for s in docs["local"]["sequences"].values()) == 4  # 2 clips x 2 points
    streams = sorted((tmp_path / "local" / videos.name / "_work").rglob("*.m3c"))
    assert len(streams) == 4
    for path in streams:  # the coded streams, byte for byte
        rel = path.relative_to(tmp_path / "local")
        assert (tmp_path / "process" / rel).read_bytes() == path.read_bytes() == (tmp_path / "ray" / rel).read_bytes()


def test_eval_resumes_after_an_interrupted_run(videos, tmp_path, monkeypatch):
    from m3cvc.eval import runner

    real = runner.run_point
    calls = []

    def interrupted(job):
        calls.append(job.point.label)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(runner, "run_point", interrupted)
    assert _eval(videos, tmp_path / "r") == 130  # Ctrl-C
    stored = [json.loads((tmp_path / "r" / videos.name / f).read_text()) for f in ("m3cvc-lite.json", "x264.json")]
    assert sum(len(s["points"]) for d in stored for s in d["sequences"].values()) == 3  # what finished is on disk
    calls.clear()
    monkeypatch.setattr(runner, "run_point", lambda job: calls.append(job.point.label) or real(job))
    assert _eval(videos, tmp_path / "r") == 0
    assert len(calls) == 8 - 3  # only what was missing ran
    assert _eval(videos, tmp_path / "local") == 0
    for codec in ("m3cvc-lite.json", "x264.json"):
        assert _strip(json.loads((tmp_path / "r" / videos.name / codec).read_text())) == \
            _strip(json.loads((tmp_path / "local" / videos.name / codec).read_text()))  # fmt: skip


def test_batch_encode_on_ray_equals_local_reports_bad_files_and_resumes(videos, ray_cluster, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for path in videos.rglob("*.y4m"):
        dest = src / path.relative_to(videos)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())
    (src / "broken.mp4").write_bytes(b"not a video at all")
    args = ["--size", f"{W}x{H}", "-q"]
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "local"), *args]) == 1
    err = capsys.readouterr().err
    assert "failed: broken.mp4: InputError" in err and "1 file failed" in err
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "ray"), "--executor", "ray", *args]) == 1
    for rel in ("pan.m3c", "cut.m3c", "sub/other.m3c"):
        assert (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    files = manifest["files"]
    assert files["pan.y4m"]["status"] == "ok" and files["pan.y4m"]["bytes"] == (tmp_path / "ray" / "pan.m3c").stat().st_size
    assert files["pan.y4m"]["bpp"] == pytest.approx(8 * files["pan.y4m"]["bytes"] / (12 * W * H))
    assert files["broken.mp4"]["status"] == "failed" and files["broken.mp4"]["attempts"] == 1
    assert manifest["summary"]["ok"] == 3 and manifest["summary"]["failed"] == 1
    assert _strip(manifest) == _strip(json.loads((tmp_path / "local" / "manifest.json").read_text()))
    assert not (tmp_path / "ray" / "broken.m3c").exists()
    # a rerun skips what is done and tries the failed file again
    capsys.readouterr()
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "ray"), "--size", f"{W}x{H}"]) == 1
    assert "ran 1, skipped 3 done before" in capsys.readouterr().out
    # other settings into the same folder are refused; --force redoes everything
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "ray"), "-q"]) == 2
    assert "other settings" in capsys.readouterr().err
    # batch decode of the streams, y4m holding exactly what `m3cvc decode` writes
    assert cli_main(["batch", "decode", str(tmp_path / "ray"), "-o", str(tmp_path / "dec"), "--executor", "ray", "-q"]) == 0
    assert cli_main(["decode", str(tmp_path / "ray" / "sub" / "other.m3c"), "-o", str(tmp_path / "o.y4m"), "-q"]) == 0
    assert (tmp_path / "dec" / "sub" / "other.y4m").read_bytes() == (tmp_path / "o.y4m").read_bytes()
    assert json.loads((tmp_path / "dec" / "manifest.json").read_text())["summary"]["ok"] == 3
    assert cli_main(["batch", "decode", str(tmp_path / "ray"), "-o", str(tmp_path / "ray" / "x"), "-q"]) == 2


def test_dataset_build_on_a_process_pool_equals_local_and_resumes(videos, tmp_path, capsys):
    assert cli_main(["dataset", "build", str(videos), "-o", str(tmp_path / "a"), "--size", f"{W}x{H}", "-q"]) == 0
    assert cli_main(["dataset", "build", str(videos), "-o", str(tmp_path / "b"), "--size", f"{W}x{H}", "-q",
                     "--executor", "process", "--workers", "2"]) == 0  # fmt: skip
    manifest = (tmp_path / "a" / "manifest.jsonl").read_text()
    assert manifest == (tmp_path / "b" / "manifest.jsonl").read_text() and manifest.count("\n") >= 3
    for line in manifest.splitlines():
        image = json.loads(line)["image"]
        assert (tmp_path / "a" / image).read_bytes() == (tmp_path / "b" / image).read_bytes()
    assert cli_main(["dataset", "build", str(videos), "-o", str(tmp_path / "a"), "--size", f"{W}x{H}"]) == 0
    assert "(3 done by an earlier run)" in capsys.readouterr().out
    assert (tmp_path / "a" / "manifest.jsonl").read_text() == manifest


def test_ray_refuses_at_once_a_task_asking_for_more_than_the_cluster_has(ray_cluster):
    from m3cvc.executors.ray_cluster import RayExecutor

    executor = RayExecutor()
    tasks = [Task("gpu", square, (3,), Resources(1.0, 1.0)), Task("cpus", square, (3,), Resources(64.0, 0.0))]
    outcomes = executor.run(tasks, progress=False)  # returns instead of waiting for a GPU forever
    assert [o.ok for o in outcomes] == [False, False]
    assert outcomes[0].error == ("ResourceError: the task asks for 1 GPUs, the Ray cluster has 0 "
                                 "(--gpus-per-task sets what a task asks for)")  # fmt: skip
    assert "asks for 64 CPUs, the Ray cluster has 2" in outcomes[1].error
    executor.close()
    assert ray_cluster.is_initialized()  # a cluster it joined is left running


def test_batch_names_that_would_collide_resume_checks_and_bad_manifests(videos, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.y4m").write_bytes((videos / "pan.y4m").read_bytes())
    write_video(src / "a.mkv", synthetic_frames(8, W, H, seed=9))
    out = tmp_path / "out"
    assert cli_main(["batch", "encode", str(src), "-o", str(out), "--size", f"{W}x{H}", "-q"]) == 0
    assert sorted(p.name for p in out.glob("*.m3c")) == ["a.mkv.m3c", "a.y4m.m3c"]  # not one over the other
    assert (out / "a.mkv.m3c").read_bytes() != (out / "a.y4m.m3c").read_bytes()
    # a changed input and an altered output are coded again; the rest is skipped
    write_video(src / "a.mkv", synthetic_frames(6, W, H, seed=11))
    capsys.readouterr()
    assert cli_main(["batch", "encode", str(src), "-o", str(out), "--size", f"{W}x{H}"]) == 0
    assert "ran 1, skipped 1" in capsys.readouterr().out
    (out / "a.y4m.m3c").write_bytes(b"junk")
    assert cli_main(["batch", "encode", str(src), "-o", str(out), "--size", f"{W}x{H}"]) == 0
    assert "ran 1, skipped 1" in capsys.readouterr().out and (out / "a.y4m.m3c").read_bytes() != b"junk"
    # ... and a deleted config sidecar is written again
    (out / "a.y4m.m3c.yaml").unlink()
    assert cli_main(["batch", "encode", str(src), "-o", str(out), "--size", f"{W}x{H}"]) == 0
    assert "ran 1, skipped 1" in capsys.readouterr().out and (out / "a.y4m.m3c.yaml").is_file()
    # ... also when the altered output kept its size
    good = (out / "a.y4m.m3c").read_bytes()
    (out / "a.y4m.m3c").write_bytes(bytes(len(good)))
    assert cli_main(["batch", "encode", str(src), "-o", str(out), "--size", f"{W}x{H}"]) == 0
    assert "ran 1, skipped 1" in capsys.readouterr().out and (out / "a.y4m.m3c").read_bytes() == good
    # a decode into an encode's folder, and a manifest that is not one, are refused; nothing is replaced
    assert cli_main(["batch", "decode", str(out), "-o", str(out / "x"), "-q"]) == 2
    (tmp_path / "dec").mkdir()
    (tmp_path / "dec" / "manifest.json").write_text("[]")
    assert cli_main(["batch", "decode", str(out), "-o", str(tmp_path / "dec"), "-q"]) == 2
    assert "not a readable m3cvc batch manifest" in capsys.readouterr().err
    assert cli_main(["batch", "decode", str(out), "-o", str(tmp_path / "out2"), "-q"]) == 0
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "out2"), "-q"]) == 2
    assert "records a batch decode" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "afile"), "-q"]) == 2
    # outputs that no batch into that folder wrote are never replaced without --force
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.mkv.m3c").write_bytes(b"precious")
    capsys.readouterr()
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "mine"), "--size", f"{W}x{H}", "-q"]) == 2
    err = capsys.readouterr().err
    assert "was not written by a batch encode" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "a.mkv.m3c").read_bytes() == b"precious" and not (tmp_path / "mine" / "manifest.json").exists()
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "mine"), "--size", f"{W}x{H}", "-q", "--force"]) == 0
    assert (tmp_path / "mine" / "a.mkv.m3c").read_bytes()[:4] == b"M3CV"
    for options, message in [(["--gpus-per-task", "1"], "--gpus-per-task needs --executor ray"),
                             (["--executor", "ray", "--gpus-per-task", "nan"], "must be a number >= 0"),
                             (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
                             (["--executor", "ray", "--ray-address", "auto", "--workers", "2"], "a cluster at --ray-address has its own")]:  # fmt: skip
        capsys.readouterr()
        assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "o3"), "-q", *options]) == 2, options
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o3").exists()  # a refused run leaves no folder


def test_dataset_build_keeps_videos_apart_and_refuses_other_settings(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "x").mkdir(parents=True)
    (src / "x_y").mkdir()
    write_video(src / "x" / "y_z.y4m", synthetic_frames(6, W, H, seed=1))
    write_video(src / "x_y" / "z.y4m", synthetic_frames(6, W, H, seed=2))
    out = tmp_path / "ds"
    assert cli_main(["dataset", "build", str(src), "-o", str(out), "--size", f"{W}x{H}", "-q"]) == 0
    samples = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len({s["image"] for s in samples}) == len(samples) == len(list((out / "images").iterdir()))
    assert cli_main(["dataset", "build", str(src), "-o", str(out), "--size", f"{W}x{H}", "--threshold", "0.01", "-q"]) == 2
    assert "built with other settings" in capsys.readouterr().err
    assert cli_main(["dataset", "build", str(src), "-o", str(out), "--size", f"{W}x{H}", "--threshold", "0.01", "-q", "--force"]) == 0
    samples = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(s["image"] for s in samples) == sorted(f"images/{p.name}" for p in (out / "images").iterdir())  # no orphans
    assert cli_main(["dataset", "build", str(src), "-o", str(src / "ds"), "-q"]) == 2


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_holds_it(videos, tmp_path, capsys):
    """eval and batch hold their output folder; a second run gets one line naming the first's process, and
    the lock dies with its holder, even one killed by SIGKILL."""
    import os
    import signal
    import subprocess
    import sys

    from m3cvc.errors import InputError
    from m3cvc.fileio import folder_lock

    out = tmp_path / "out"
    code = f"from m3cvc.fileio import folder_lock\nwith folder_lock({str(out / videos.name)!r}, 'm3cvc eval'):\n" \
           f"    with folder_lock({str(tmp_path / 'batch')!r}, 'm3cvc batch encode'):\n        print('held', flush=True)\n" \
           "        import time; time.sleep(600)\n"  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _eval(videos, out) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"another m3cvc eval (process {holder.pid}) is writing to" in err[0], err
        assert not list((out / videos.name).glob("*.json"))  # nothing was coded or written
        assert cli_main(["batch", "encode", str(videos), "-o", str(tmp_path / "batch"), "-q"]) == 2
        assert f"another m3cvc batch encode (process {holder.pid})" in capsys.readouterr().err
        assert not (tmp_path / "batch" / "manifest.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with folder_lock(out / videos.name, "m3cvc eval"):  # free again; and held here, a nested claim fails
        with pytest.raises(InputError, match=f"process {os.getpid()}"):
            with folder_lock(out / videos.name, "m3cvc eval"):
                pass


def test_batch_encode_reads_raw_files_with_the_input_options(videos, tmp_path, capsys):
    """Raw .yuv files are encoded when their layout is given (the same bytes as `m3cvc encode`), left out
    with a note when it is not, and the layout options are refused for a folder without raw files."""
    import shutil

    import cv2

    src = tmp_path / "src"
    shutil.copytree(videos, src)
    frames = synthetic_frames(8, W, H, seed=7)
    (src / "raw.yuv").write_bytes(b"".join(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420).tobytes() for f in frames))
    layout = ["--input-size", f"{W}x{H}", "--input-fps", "8"]
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "no"), "--size", f"{W}x{H}", "-q"]) == 0
    assert "1 raw video file(s) (raw.yuv) left out" in capsys.readouterr().err
    assert not (tmp_path / "no" / "raw.m3c").exists() and (tmp_path / "no" / "pan.m3c").exists()
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "yes"), "--size", f"{W}x{H}", *layout, "-q"]) == 0
    single = tmp_path / "single.m3c"
    assert cli_main(["encode", str(src / "raw.yuv"), "-o", str(single), "--size", f"{W}x{H}", *layout, "-q"]) == 0
    assert (tmp_path / "yes" / "raw.m3c").read_bytes() == single.read_bytes()
    assert (tmp_path / "yes" / "pan.m3c").read_bytes() == (tmp_path / "no" / "pan.m3c").read_bytes()
    assert f"--input-size {W}x{H}" in (tmp_path / "yes" / "raw.m3c.yaml").read_text()
    assert cli_main(["batch", "encode", str(videos), "-o", str(tmp_path / "none"), *layout, "-q"]) == 2
    assert f"{videos} has none" in capsys.readouterr().err and not (tmp_path / "none").exists()
    # following the note: the raw file is added, the rest skipped; the default pixel format spelt out is no change
    assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "no"), "--size", f"{W}x{H}", *layout]) == 0
    assert "ran 1, skipped 3 done before" in capsys.readouterr().out
    assert (tmp_path / "no" / "raw.m3c").read_bytes() == single.read_bytes()
    again = ["batch", "encode", str(src), "-o", str(tmp_path / "no"), "--size", f"{W}x{H}", *layout]
    assert cli_main([*again, "--input-pix-fmt", "yuv420p"]) == 0 and "ran 0, skipped 4" in capsys.readouterr().out
    # another layout re-reads the raw file only; half a layout is refused before anything runs
    assert cli_main([*again, "--input-fps", "4"]) == 0 and "ran 1, skipped 3" in capsys.readouterr().out
    for half in (["--input-size", f"{W}x{H}"], ["--input-fps", "8"], ["--input-pix-fmt", "yuv444p"]):
        assert cli_main(["batch", "encode", str(src), "-o", str(tmp_path / "half"), *half, "-q"]) == 2
        assert "needs both --input-size and --input-fps" in capsys.readouterr().err
    assert not (tmp_path / "half").exists()
