"""Quality metrics: the registry (:mod:`.suite`), pixel metrics (:mod:`.pixel`), learned metrics
(:mod:`.learned`), VMAF (:mod:`.vmaf`) and the weights resolver of the learned ones (:mod:`.weights`).

The pixel functions are re-exported here (``from m3cvc.eval.metrics import psnr, ms_ssim``).
"""

from .pixel import (
    MS_SSIM_WEIGHTS,
    PixelEngine,
    SequenceAccumulator,
    ms_ssim,
    ms_ssim_scales,
    mse,
    psnr,
    psnr_from_mse,
    sequence_psnr_ms_ssim,
    ssim,
)
from .suite import (
    DERIVED,
    LABELS,
    LOWER_IS_BETTER,
    METRIC_NAMES,
    SPECS,
    MetricOptions,
    MetricSuite,
    MetricValue,
    parse_metrics,
)

__all__ = [
    "DERIVED", "LABELS", "LOWER_IS_BETTER", "METRIC_NAMES", "MS_SSIM_WEIGHTS", "MetricOptions", "MetricSuite",
    "MetricValue", "PixelEngine", "SPECS", "SequenceAccumulator", "ms_ssim", "ms_ssim_scales", "mse", "psnr",
    "psnr_from_mse", "parse_metrics", "sequence_psnr_ms_ssim", "ssim",
]  # fmt: skip
