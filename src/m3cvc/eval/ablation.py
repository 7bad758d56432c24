"""Table I of the paper as configs: each row is m3cvc with some config keys fixed, BD-rate vs VVC.

Rows (profile defaults for every key not listed):

============================  ==========================================================
keyframes / fixed-interval    ``keyframes.selector: fixed`` (period ``--fixed-interval``)
keyframes / semantic only     ``keyframes.motion: none``, ``keyframes.lambda2: 0``
keyframes / semantic+motion   the profile's composite selector (lambda1, lambda2 > 0)
LMM / single vs dialogue      ``describe.strategy: single | dialogue`` with ``--describer NAME``
                              (qwen-vl needs its weights, openai a server); unavailable otherwise.
                              The lite reconstruction ignores texts, so there only the rate moves
reconstruction / interpolate  ``reconstruct.mode: interpolation``
reconstruction / predict      ``reconstruct.mode: prediction``
============================  ==========================================================

Rows with identical settings (semantic+motion and interpolation are both the default) are coded once.
Pointing ``--out`` at an earlier ``m3cvc eval`` folder reuses its VVC and default-m3cvc points (resume).

**Equal keyframe counts** (the paper compares keyframe strategies "with an equal number of keyframes"):
for each clip, :func:`equal_keyframe_counts` runs the composite selector (no coding) and gives the
fixed-interval row the period and the semantic-only row the threshold (bisection) whose keyframe count
is closest to the composite's; every row's per-clip counts are reported. So that the counts hold at
every rate point, the ablation sweeps the keyframe QP (``keyframe_codec.hevc.qp``, :data:`QP_POINTS`)
rather than a rate-control target, which would choose the spacing per point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..config import DescribeConfig, to_dict
from .bdrate import compare


QP_POINTS = (49.0, 45.0, 41.0, 37.0, 33.0)  # the ablation's rate points with the HEVC keyframe chain
EQUALISED = ("fixed-interval", "lambda1 != 0, lambda2 = 0")


@dataclass(frozen=True)
class AblationRow:
    group: str
    setting: str
    overrides: dict[str, Any]
    unavailable: Optional[str] = None
    per_clip: Optional[dict[str, dict[str, Any]]] = None  # clip -> overrides (equal keyframe counts)

    @property
    def key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items())) or "default"


def dialogue_rows(describer: Optional[str] = None) -> list[AblationRow]:
    """Single-prompt vs multi-round dialogue descriptions (``describe.strategy``) with an LMM describer.

    Needs a describer that can run (``qwen-vl`` with its weights, ``openai`` with a server), so it is
    only run when one is named; otherwise the row is listed as unavailable.
    """
    from ..describe import DESCRIBERS

    lmm = [n for n in DESCRIBERS.names() if n not in ("none", "manual")]
    if "strategy" not in DescribeConfig.__dataclass_fields__ or not lmm:
        return [AblationRow("LMM", "dialogue turns", {}, unavailable="no LMM describer in this build")]
    if describer is None:
        why = f"needs an LMM describer: pass --describer ({', '.join(lmm)}) with its weights / server"
        return [AblationRow("LMM", "dialogue turns", {}, unavailable=why)]
    if describer not in lmm:
        from ..errors import ConfigError

        raise ConfigError(f"--describer must be one of {', '.join(lmm)}, got {describer!r}")
    return [
        AblationRow("LMM", f"{describer}: {strategy}", {"describe.backend": describer, "describe.strategy": strategy})
        for strategy in ("single", "dialogue")
    ]


def table_rows(fixed_interval: int = 8, describer: Optional[str] = None) -> list[AblationRow]:
    return [
        AblationRow("keyframe selection", "fixed-interval", {"keyframes.selector": "fixed", "keyframes.interval": fixed_interval}),
        AblationRow("keyframe selection", "lambda1 != 0, lambda2 = 0", {"keyframes.motion": "none", "keyframes.lambda2": 0.0}),
        AblationRow("keyframe selection", "lambda1 != 0, lambda2 != 0", {}),
        *dialogue_rows(describer),
        AblationRow("reconstruction mode", "interpolation", {"reconstruct.mode": "interpolation"}),
        AblationRow("reconstruction mode", "prediction", {"reconstruct.mode": "prediction"}),
    ]


def _count(config: Any, frames: Sequence[np.ndarray], fps: Any) -> int:
    """Keyframes the encoder would select on ``frames`` with ``config`` (selection only, no coding)."""
    from ..describe import NoneDescriber
    from ..pipeline import Encoder
    from .m3cvc_codec import ArraySource

    return len(Encoder(config).segment(ArraySource(frames, fps), NoneDescriber()).keyframes)


def equal_keyframe_counts(config: Any, clips: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Per clip: the composite selector's keyframe count and the settings that give the fixed-interval
    and semantic-only rows the closest count (``{"composite": n, "fixed-interval": {...}, ...}``)."""
    from dataclasses import replace as dc_replace

    out: dict[str, dict[str, Any]] = {}
    for clip in clips:
        frames, fps = clip.frames, clip.fps
        target = _count(config, frames, fps)
        fixed = {}
        for interval in range(1, min(len(frames), config.keyframes.max_interval * 4) + 1):
            cfg = dc_replace(config, keyframes=dc_replace(config.keyframes, selector="fixed", interval=interval))
            fixed[interval] = _count(cfg, frames, fps)
        interval = min(fixed, key=lambda i: (abs(fixed[i] - target), -i))
        sem = dc_replace(config.keyframes, motion="none", lambda2=0.0)
        lo, hi = 0.0, 2.0  # the count falls as the threshold rises (1 - sim is in [0, 2])
        counts: dict[float, int] = {}
        for _ in range(14):
            mid = (lo + hi) / 2
            counts[mid] = _count(dc_replace(config, keyframes=dc_replace(sem, threshold=mid)), frames, fps)
            if counts[mid] > target:
                lo = mid
            else:
                hi = mid
        threshold = min(counts, key=lambda t: (abs(counts[t] - target), t))
        out[clip.name] = {
            "composite": target,
            "fixed-interval": {"overrides": {"keyframes.interval": interval}, "keyframes": fixed[interval]},
            "lambda1 != 0, lambda2 = 0": {"overrides": {"keyframes.threshold": round(threshold, 6)},
                                          "keyframes": counts[threshold]},
        }  # fmt: skip
    return out


def equalised_rows(rows: Sequence[AblationRow], counts: dict[str, dict[str, Any]]) -> list[AblationRow]:
    """``rows`` with the keyframe-strategy rows given their per-clip settings from :func:`equal_keyframe_counts`."""
    from dataclasses import replace as dc_replace

    out = []
    for row in rows:
        if row.setting in EQUALISED and not row.unavailable:
            row = dc_replace(row, per_clip={clip: c[row.setting]["overrides"] for clip, c in counts.items()})
        out.append(row)
    return out


def build_codecs(
    profile: str, rows: Sequence[AblationRow], points: Optional[Sequence[float]], sweep: Optional[str] = None
) -> tuple[list[Any], dict[str, str]]:
    """One codec per distinct resolved config, and row setting -> codec name.

    The row whose config equals the profile's is named like the profile (``m3cvc:lite``), so ``--out``
    of an earlier ``m3cvc eval`` run is reused.
    """
    from .m3cvc_codec import M3cvcCodec

    plain = M3cvcCodec(profile, points=points, sweep=sweep)
    by_config: dict[str, Any] = {}
    names: dict[str, str] = {}
    for row in rows:
        if row.unavailable:
            continue
        tag = row.key + ("+equal-keyframes" if row.per_clip else "")
        codec = M3cvcCodec(profile, points=points, sweep=sweep, overrides=row.overrides, name=f"m3cvc:{profile}[{tag}]",
                           per_clip=row.per_clip)  # fmt: skip
        key = json.dumps(to_dict(codec.config), sort_keys=True)
        if key == json.dumps(to_dict(plain.config), sort_keys=True):
            codec = plain
        chosen = by_config.setdefault(key, codec)
        names[row.setting] = chosen.name
    return list(by_config.values()), names


def _mean_keyframes(results: dict[str, Any]) -> Optional[float]:
    counts = [p["info"].get("keyframes") for s in results["sequences"].values() for p in s["points"]]
    counts = [c for c in counts if c is not None]
    return float(np.mean(counts)) if counts else None


def _clip_keyframes(results: dict[str, Any]) -> dict[str, list[int]]:
    """Keyframes per clip, one count per rate point."""
    return {seq: [p["info"].get("keyframes") for p in s["points"]] for seq, s in results["sequences"].items()}


def ablation_table(
    rows: Sequence[AblationRow], names: dict[str, str], results: dict[str, dict[str, Any]], anchor: str, metric: str
) -> list[dict[str, Any]]:
    """One entry per row: BD-rate (and BD-quality) vs ``anchor`` on the dataset curve of ``metric``."""
    table = []
    for row in rows:
        entry: dict[str, Any] = {"group": row.group, "setting": row.setting, "overrides": row.overrides}
        if row.unavailable:
            entry.update(bd_rate=None, note=f"unavailable: {row.unavailable}")
        else:
            res = results[names[row.setting]]
            cmp = compare(results[anchor], res, metric)["dataset_curve"]
            entry.update(
                bd_rate=cmp["bd_rate"], bd_quality=cmp["bd_quality"], overlap=cmp["overlap_quality"],
                note=cmp["note"], mean_keyframes=_mean_keyframes(res), codec=names[row.setting],
                keyframes_per_clip=_clip_keyframes(res),
            )  # fmt: skip
        table.append(entry)
    return table


def format_table(table: Sequence[dict[str, Any]], anchor: str, metric: str) -> str:
    head = f"  {'group':<20} {'setting':<28} {'BD-rate %':>10} {'BD-' + metric:>12} {'keyframes':>9}  note"
    lines = [f"Ablation (Table I) vs {anchor} on {metric} (BD-{metric}: mean difference at equal rate)", head]
    for e in table:
        bd = "n/a" if e.get("bd_rate") is None else f"{e['bd_rate']:+.1f}"
        bq = "n/a" if e.get("bd_quality") is None else f"{e['bd_quality']:+.4g}"
        kf = "" if e.get("mean_keyframes") is None else f"{e['mean_keyframes']:.1f}"
        lines.append(f"  {e['group']:<20} {e['setting']:<28} {bd:>10} {bq:>12} {kf:>9}  {e.get('note', '')}")
    return "\n".join(lines)
