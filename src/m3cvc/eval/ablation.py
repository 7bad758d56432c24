"""Table I of the paper as configs: each row is m3cvc with some config keys fixed, BD-rate vs VVC.

Rows (profile defaults for every key not listed):

============================  ==========================================================
keyframes / fixed-interval    ``keyframes.selector: fixed`` (period ``--fixed-interval``)
keyframes / semantic only     ``keyframes.motion: none``, ``keyframes.lambda2: 0``
keyframes / semantic+motion   the profile's composite selector (lambda1, lambda2 > 0)
dialogue turns                needs an LMM describer with a dialogue-turns setting; listed as
                              unavailable when the build has none
reconstruction / interpolate  ``reconstruct.mode: interpolation``
reconstruction / predict      ``reconstruct.mode: prediction``
============================  ==========================================================

Rows with identical settings (semantic+motion and interpolation are both the default) are coded once.
Pointing ``--out`` at an earlier ``m3cvc eval`` folder reuses its VVC and default-m3cvc points (resume).
The paper compares keyframe strategies at equal keyframe counts; the mean number of keyframes of every
row is reported so the comparison can be judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..config import DescribeConfig
from .bdrate import compare


@dataclass(frozen=True)
class AblationRow:
    group: str
    setting: str
    overrides: dict[str, Any]
    unavailable: Optional[str] = None

    @property
    def key(self) -> str:
        """Identical settings share one key (and one codec run)."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items())) or "default"


def dialogue_rows() -> list[AblationRow]:
    from ..describe import DESCRIBERS

    lmm = [n for n in DESCRIBERS.names() if n not in ("none", "manual")]
    turns_key = next((f for f in ("turns", "dialogue_turns") if f in DescribeConfig.__dataclass_fields__), None)
    if not lmm or turns_key is None:
        why = "no LMM describer in this build" if not lmm else "the describer config has no dialogue-turns setting"
        return [AblationRow("LMM", "dialogue turns", {}, unavailable=why)]
    return [
        AblationRow("LMM", f"{n} turn(s)", {"describe.backend": lmm[0], f"describe.{turns_key}": n}) for n in (1, 2, 3)
    ]


def table_rows(fixed_interval: int = 8) -> list[AblationRow]:
    return [
        AblationRow("keyframe selection", "fixed-interval", {"keyframes.selector": "fixed", "keyframes.interval": fixed_interval}),
        AblationRow("keyframe selection", "lambda1 != 0, lambda2 = 0", {"keyframes.motion": "none", "keyframes.lambda2": 0.0}),
        AblationRow("keyframe selection", "lambda1 != 0, lambda2 != 0", {}),
        *dialogue_rows(),
        AblationRow("reconstruction mode", "interpolation", {"reconstruct.mode": "interpolation"}),
        AblationRow("reconstruction mode", "prediction", {"reconstruct.mode": "prediction"}),
    ]


def codec_name(profile: str, row: AblationRow) -> str:
    """The profile's own name for the default row, so ``--out`` of an earlier eval run is reused."""
    return f"m3cvc:{profile}" if row.key == "default" else f"m3cvc:{profile}[{row.key}]"


def build_codecs(profile: str, rows: Sequence[AblationRow], points: Optional[Sequence[float]], sweep: str) -> list[Any]:
    from .m3cvc_codec import M3cvcCodec

    codecs: dict[str, Any] = {}
    for row in rows:
        if row.unavailable:
            continue
        name = codec_name(profile, row)
        if name not in codecs:
            codecs[name] = M3cvcCodec(profile, points=points, sweep=sweep, overrides=row.overrides, name=name)
    return list(codecs.values())


def _mean_keyframes(results: dict[str, Any]) -> Optional[float]:
    counts = [p["info"].get("keyframes") for s in results["sequences"].values() for p in s["points"]]
    counts = [c for c in counts if c is not None]
    return float(np.mean(counts)) if counts else None


def ablation_table(
    rows: Sequence[AblationRow], results: dict[str, dict[str, Any]], profile: str, anchor: str, metric: str
) -> list[dict[str, Any]]:
    """One entry per row: BD-rate (and BD-quality) vs ``anchor`` on the dataset curve of ``metric``."""
    table = []
    for row in rows:
        entry: dict[str, Any] = {"group": row.group, "setting": row.setting, "overrides": row.overrides}
        if row.unavailable:
            entry.update(bd_rate=None, note=f"unavailable: {row.unavailable}")
        else:
            res = results[codec_name(profile, row)]
            cmp = compare(results[anchor], res, metric)["dataset_curve"]
            entry.update(
                bd_rate=cmp["bd_rate"], bd_quality=cmp["bd_quality"], overlap=cmp["overlap_quality"],
                note=cmp["note"], mean_keyframes=_mean_keyframes(res), codec=codec_name(profile, row),
            )  # fmt: skip
        table.append(entry)
    return table


def format_table(table: Sequence[dict[str, Any]], anchor: str, metric: str) -> str:
    lines = [f"Ablation (Table I): BD-rate vs {anchor} on {metric}", f"  {'group':<20} {'setting':<28} {'BD-rate %':>10} {'keyframes':>9}  note"]
    for e in table:
        bd = "n/a" if e.get("bd_rate") is None else f"{e['bd_rate']:+.1f}"
        kf = "" if e.get("mean_keyframes") is None else f"{e['mean_keyframes']:.1f}"
        lines.append(f"  {e['group']:<20} {e['setting']:<28} {bd:>10} {kf:>9}  {e.get('note', '')}")
    return "\n".join(lines)
