"""Optical flow between frames (OpenCV's DIS: dense, and fast on a CPU), where it can be trusted, and the
warping it gives: what keeps painted frames steady, and what measures how steady they are.

Conventions: frames are (H, W, 3) uint8 or float32 arrays; a flow is (H, W, 2) float32 offsets in pixels
(x, y) such that ``current[p]`` shows what ``previous[p + flow[p]]`` showed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import checks

#: DIS presets by name: faster, or finer.
PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}
#: The preset used unless another is asked for (benchmarks/video.py measures each).
PRESET = "fast"


def _cv2() -> Any:
    return checks.require("cv2", "video", "video stability")


def _grey(frame: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    if frame.dtype != np.uint8:
        frame = np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


@dataclass
class Motion:
    """How the picture moved from one frame to the next: ``flow`` (see the module's conventions) and
    ``reliable``, a (H, W) float32 mask that is 1 where the flow can be trusted and 0 where it cannot
    (occlusions, where forward and backward flows disagree, and what came in from outside the frame)."""

    flow: np.ndarray
    reliable: np.ndarray

    def warp(self, previous: np.ndarray, sharp: bool = False) -> np.ndarray:
        """``previous`` moved to where its content is in the current frame: bilinear, as the warping error
        is defined, or ``sharp``, bicubic, for a picture that is moved again and again (a steadied video),
        which bilinear resampling would blur a little more at every frame."""
        cv2 = _cv2()
        height, width = self.flow.shape[:2]
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        moved = cv2.remap(previous, grid_x + self.flow[..., 0], grid_y + self.flow[..., 1],
                          cv2.INTER_CUBIC if sharp else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.asarray(moved, dtype=previous.dtype)


class FlowEstimator:
    """Motion between consecutive frames by DIS optical flow, checked forward against backward (Sundaram
    et al. 2010, as Ruder et al. 2016 use it): a pixel is reliable when following the flow back and then
    forward again returns to it, within a tolerance that grows with the motion."""

    def __init__(self, preset: str = PRESET, scale: float = 1.0) -> None:
        checks.choice("preset", preset, tuple(PRESETS))
        if not 0 < scale <= 1:
            raise ValueError(f"a flow's scale is in (0, 1], not {scale}")
        cv2 = _cv2()
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.scale = scale

    def motion(self, previous: np.ndarray, current: np.ndarray) -> Motion:
        """The motion from frame ``previous`` to frame ``current`` (RGB, the same size), found at ``scale`` of
        their size (0.5: a tenth of the time, coarser at edges) and given at their size."""
        cv2 = _cv2()
        before, after = _grey(previous), _grey(current)
        if self.scale == 1:
            return self._motion(before, after)
        height, width = before.shape
        small = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
        found = self._motion(cv2.resize(before, small, interpolation=cv2.INTER_AREA),
                             cv2.resize(after, small, interpolation=cv2.INTER_AREA))
        flow = cv2.resize(found.flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow *= np.array([width / small[0], height / small[1]], dtype=np.float32)
        return Motion(flow, cv2.resize(found.reliable, (width, height), interpolation=cv2.INTER_LINEAR))

    def _motion(self, before: np.ndarray, after: np.ndarray) -> Motion:
        cv2 = _cv2()
        backward = self._dis.calc(after, before, None)  # after[p] ~ before[p + backward[p]]
        forward = self._dis.calc(before, after, None)  # before[q] ~ after[q + forward[q]]
        height, width = backward.shape[:2]
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        map_x, map_y = grid_x + backward[..., 0], grid_y + backward[..., 1]
        there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        loop = _squared_length(backward + there)
        tolerance = 0.01 * (_squared_length(backward) + _squared_length(there)) + 0.5
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        return Motion(backward, ((loop <= tolerance) & inside).astype(np.float32))


def _squared_length(flow: np.ndarray) -> np.ndarray:
    """Each offset's squared length; a sum over the last axis of two takes ten times as long in numpy."""
    return np.asarray(flow[..., 0] * flow[..., 0] + flow[..., 1] * flow[..., 1])


def warping_error(frames: list[np.ndarray], motions: list[Motion]) -> float:
    """The mean absolute difference (0-1 scale) between each frame and the one before it moved by the
    input's motion, over reliable pixels: the literature's measure of flicker (Lai et al. 2018). ``motions[i]``
    is the motion from ``frames[i]`` to ``frames[i + 1]``."""
    total, count = 0.0, 0.0
    for previous, current, motion in zip(frames, frames[1:], motions, strict=False):
        moved = motion.warp(_float(previous))
        difference = np.abs(_float(current) - moved).mean(-1)
        total += float((difference * motion.reliable).sum())
        count += float(motion.reliable.sum())
    return total / max(count, 1.0)


def _float(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) / 255 if frame.dtype == np.uint8 else frame.astype(np.float32)


class Steadier:
    """Blends each painted frame with the previous painted frame moved by the input's motion, where that
    motion is reliable: ``blend``, the previous frame's weight from 0 to 1 (a video's ``stability``, checked
    by ``api.video.check_stability``), 0 leaves frames as painted, 1 keeps what was painted before wherever
    it can be followed. New content (occlusions, the frame's edges) is always painted afresh."""

    def __init__(self, blend: float, preset: str = PRESET, scale: float = 1.0) -> None:
        self.blend = blend
        self._flow = FlowEstimator(preset, scale) if blend else None
        self._input: np.ndarray | None = None
        self._output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, painted: np.ndarray) -> np.ndarray:
        """The steadied version of ``painted`` (uint8 RGB), the painting of input ``frame``."""
        if self._flow is None:
            return painted
        result = painted
        if self._input is not None and self._output is not None:
            motion = self._flow.motion(self._input, frame)
            moved = motion.warp(self._output, sharp=True)
            weight = (self.blend * motion.reliable)[..., None]
            result = np.clip(_float(painted) * (1 - weight) + moved * weight, 0, 1)  # bicubic overshoots
        self._input, self._output = frame, _float(result)
        return np.clip(_float(result) * 255 + 0.5, 0, 255).astype(np.uint8)
