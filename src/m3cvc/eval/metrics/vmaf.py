"""VMAF (Netflix) through the ``libvmaf`` filter of the ffmpeg that imageio-ffmpeg bundles.

No extra weights: the models ``vmaf_v0.6.1`` and ``vmaf_v0.6.1neg`` (the "no enhancement gain" variant,
which does not reward sharpening) are built into libvmaf. When both are requested they are computed in
**one** libvmaf pass (the features are shared).

How frames reach ffmpeg: through one pipe, nothing on disk. Each reference frame and its decoded frame
are stacked vertically into one ``W x 2H`` RGB24 picture and written to ffmpeg's stdin as rawvideo; the
filter graph splits it again (``crop``), converts both halves with the same swscale conversion
(``format=yuv444p``: BT.601 limited range; VMAF reads luma only) and feeds them to libvmaf as
distorted and reference. Stacking makes the pairing exact: the two inputs share one timestamp per frame,
so no frame can be compared with its neighbour (a classic pitfall of two-input VMAF commands). The
per-frame log (JSON) goes to a temporary file that is read back and deleted.

VMAF is computed at the coded resolution (512x320 in the paper's setting), without upscaling to the
1080p viewing condition the model was trained for: scores compare codecs on the same clips, not with
published 1080p figures. Per-frame scores are stored; the sequence value is libvmaf's pooled mean, and
its harmonic mean is kept beside it (``vmaf_hmean``, ``vmaf_neg_hmean``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import BackendError
from .suite import MetricEngine, MetricValue, Unavailable

MODELS = {"vmaf": "vmaf_v0.6.1", "vmaf_neg": "vmaf_v0.6.1neg"}


def vmaf_command(width: int, height: int, names: Sequence[str], log_path: Path, threads: int) -> list[str]:
    """The ffmpeg command that reads stacked ``W x 2H`` RGB24 frames on stdin and logs VMAF per frame."""
    from ...video.ffmpeg import ffmpeg_exe

    models = "|".join(f"version={MODELS[n]}\\:name={n}" for n in names)
    graph = (
        f"[0:v]split=2[top][bottom];"
        f"[bottom]crop={width}:{height}:0:{height},format=yuv444p[dist];"
        f"[top]crop={width}:{height}:0:0,format=yuv444p[ref];"
        f"[dist][ref]libvmaf=model='{models}':log_fmt=json:log_path={_escape(str(log_path))}:n_threads={threads}"
    )
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "1",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{2 * height}", "-r", "8", "-i", "pipe:0",
        "-filter_complex", graph, "-f", "null", "-",
    ]  # fmt: skip


def _escape(path: str) -> str:
    """A file path as a filter option value (``:`` and ``\\`` and quotes escaped)."""
    return path.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def run_vmaf(refs: Sequence[np.ndarray], decs: Sequence[np.ndarray], names: Sequence[str], threads: int = 0) -> dict[str, Any]:
    """libvmaf's JSON log for these frame pairs (``frames`` per frame, ``pooled_metrics``, ``version``)."""
    height, width = refs[0].shape[:2]
    threads = threads or min(os.cpu_count() or 1, 8)
    with tempfile.TemporaryDirectory(prefix="m3cvc-vmaf-") as tmp:
        log = Path(tmp) / "vmaf.json"
        stderr_path = Path(tmp) / "stderr.txt"
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(vmaf_command(width, height, names, log, threads), stdin=subprocess.PIPE, stderr=err)
            failed = ""
            try:  # stderr goes to a file and stdout is unused, so writing cannot deadlock
                for ref, dec in zip(refs, decs):
                    proc.stdin.write(np.ascontiguousarray(np.concatenate([ref, dec], axis=0), dtype=np.uint8).tobytes())
            except OSError as exc:  # ffmpeg stopped early: its stderr says why
                failed = str(exc)
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            code = proc.wait()
        if code != 0 or not log.is_file():
            tail = " | ".join(stderr_path.read_text(errors="replace").strip().splitlines()[-2:])
            raise BackendError(f"libvmaf failed (ffmpeg exit {code}): {tail or failed}")
        return json.loads(log.read_text())


class Vmaf(MetricEngine):
    """``vmaf`` and / or ``vmaf_neg`` from one libvmaf pass."""

    def load(self) -> None:
        from ...video.ffmpeg import ffmpeg_version, has_filter

        try:
            ok = has_filter("libvmaf")
        except (BackendError, OSError) as exc:
            raise Unavailable(f"needs imageio-ffmpeg's ffmpeg ({exc})") from None
        if not ok:
            raise Unavailable("this ffmpeg has no libvmaf filter (imageio-ffmpeg's static build has it)")
        self.ffmpeg = ffmpeg_version()
        probe = np.zeros((64, 64, 3), np.uint8)  # one tiny pair: libvmaf runs, and says its version
        try:
            self.libvmaf = str(run_vmaf([probe], [probe], self.names, threads=1).get("version", "unknown"))
        except BackendError as exc:
            raise Unavailable(str(exc)) from None

    def info(self, name: str) -> dict[str, Any]:
        return {
            "model": MODELS[name], "libvmaf": self.libvmaf, "ffmpeg": self.ffmpeg,
            "pooling": "mean (and harmonic mean)", "input": "RGB -> yuv444p (swscale BT.601), coded resolution",
        }  # fmt: skip

    def compute(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> dict[str, MetricValue]:
        log = run_vmaf(refs, decs, self.names)
        frames = sorted(log["frames"], key=lambda f: f["frameNum"])
        if len(frames) != len(refs):
            raise BackendError(f"libvmaf scored {len(frames)} frames of {len(refs)}")
        out = {}
        for n in self.names:
            pooled = log["pooled_metrics"][n]
            out[n] = MetricValue(
                float(pooled["mean"]), [float(f["metrics"][n]) for f in frames], {f"{n}_hmean": float(pooled["harmonic_mean"])}
            )
        return out
