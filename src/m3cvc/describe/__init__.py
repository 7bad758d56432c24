"""Describers (paper II-B). ``none`` and ``manual`` are weight-free; ``qwen-vl`` (in-process) and
``openai`` (HTTP) run the multi-round dialogue of :mod:`.dialogue` and are imported lazily."""

from __future__ import annotations

from ..config import DescribeConfig
from ..errors import ConfigError
from .base import DESCRIBERS, Describer
from .simple import Descriptions, ManualDescriber, NoneDescriber

DESCRIBERS.register("none", NoneDescriber)
DESCRIBERS.register("manual", ManualDescriber.from_file)
DESCRIBERS.register("qwen-vl", "m3cvc.describe.qwen_vl:create")
DESCRIBERS.register("openai", "m3cvc.describe.openai_api:create")


def build_describer(cfg: DescribeConfig) -> Describer:
    if cfg.backend == "none":
        return NoneDescriber()
    if cfg.backend == "manual":
        if not cfg.descriptions:
            raise ConfigError("describe.backend 'manual' needs describe.descriptions (a JSON/YAML file)")
        return ManualDescriber.from_file(cfg.descriptions)
    factory = DESCRIBERS.resolve(cfg.backend)
    return factory(cfg)


__all__ = ["Describer", "Descriptions", "ManualDescriber", "NoneDescriber", "build_describer", "DESCRIBERS"]
