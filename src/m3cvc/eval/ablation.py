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
The paper compares keyframe strategies at equal keyframe counts; the mean number of keyframes of every
row is reported so the comparison can be judged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..config import DescribeConfig, to_dict
from .bdrate import compare


@dataclass(frozen=True)
class AblationRow:
    group: str
    setting: str
    overrides: dict[str, Any]
    unavailable: Optional[str] = None

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
        codec = M3cvcCodec(profile, points=points, sweep=sweep, overrides=row.overrides, name=f"m3cvc:{profile}[{row.key}]")
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
