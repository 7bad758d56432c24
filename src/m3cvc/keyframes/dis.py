"""``dis``: OpenCV DIS optical flow as the motion term of paper II-A (weight-free).

Both frames are converted to grey and resized (INTER_AREA) to ``working_width`` (aspect kept,
never upscaled, except tiny frames to 16 px); the DIS flow from the last keyframe to the current
frame is computed there and its mean magnitude is returned in percent of the working-resolution
diagonal (see :mod:`m3cvc.keyframes.base`), so the value does not depend on the video size or
the working size. About 1.5 ms of CPU per 512x320 frame with the defaults (fast, 192 px wide).
Large displacements (fast pans far from the last keyframe) are underestimated at small working
widths; the semantic term still reacts to them.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ConfigError
from .base import MotionBackend, mean_flow_percent, working_size

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

DIS_MIN_SIDE = 32  # OpenCV 4.x's DIS (fast presets) crashes on images under 32 px high: smaller ones are upscaled


class DisMotion(MotionBackend):
    def __init__(self, preset: str = "medium", working_width: int = 256) -> None:
        if preset not in DIS_PRESETS:
            raise ConfigError(
                f"keyframes.dis.preset: unknown DIS preset {preset!r}; choose one of: "
                f"{', '.join(DIS_PRESETS)}"
            )
        if working_width < 16:
            raise ConfigError(f"keyframes.dis.working_width must be >= 16, got {working_width}")
        self.preset = preset
        self.working_width = int(working_width)
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        size = working_size(width, height, self.working_width, minimum=DIS_MIN_SIDE)
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if size == (width, height):
            return grey
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)

    def magnitude(self, previous: np.ndarray, current: np.ndarray) -> float:
        flow = self._dis.calc(previous, current, None)
        return mean_flow_percent(flow)
