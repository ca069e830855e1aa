"""What an ascent draws and records step by step, within bounds whatever its steps: the random
transforms of each step (drawn a block at a time) and each image's score curve (kept at a bounded
resolution)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnviz.core.backend import keras
from cnnviz.oip.settings import RECORD_STEPS, Settings
from cnnviz.oip.transforms import IDENTITY

MAX_CURVE = RECORD_STEPS  # points a score curve keeps, however long the ascent


class Curves:
    """Each image's score along the ascent, at a bounded resolution: every step of an ascent
    of at most :data:`MAX_CURVE` steps, else the last step of each of :data:`MAX_CURVE` equal
    spans — a long ascent's record does not grow with its steps. Scores wait as tensors (no
    sync per step) and are copied out every few hundred steps."""

    def __init__(self, rows: int, steps: int, earlier: np.ndarray | None = None) -> None:
        self.steps, self.points = steps, curve_points(steps)
        self.values = np.zeros((rows, self.points), np.float32)
        if earlier is not None:
            self.values[:, :earlier.shape[1]] = earlier
        self.waiting: list[tuple[int, Any]] = []

    def point(self, t: int) -> int:
        """The point step ``t`` (0-based) is recorded at."""
        return t * self.points // self.steps

    def add(self, t: int, score: Any) -> None:
        """Step ``t``'s scores (a tensor)."""
        self.waiting.append((t, score))
        if len(self.waiting) >= 256:
            self._flush()

    def _flush(self) -> None:
        ops = keras().ops
        for t, score in self.waiting:
            self.values[:, self.point(t)] = np.asarray(ops.convert_to_numpy(score), np.float32)
        self.waiting = []

    def upto(self, done: int) -> np.ndarray:
        """The points of the first ``done`` steps: (rows, points so far)."""
        self._flush()
        return self.values[:, :self.point(done - 1) + 1 if done else 0].copy()


def curve_points(steps: int) -> int:
    """How many points the score curve of an ascent of ``steps`` keeps."""
    return min(steps, MAX_CURVE)


PLAN_BLOCK = RECORD_STEPS  # steps whose transforms are drawn at once


class TransformPlan:
    """Each step's transform parameters (K, 8), one random stream per image, the last
    ``settle`` share of the steps untransformed. An ascent of at most :data:`PLAN_BLOCK` steps
    draws them all at once; a longer one block by block (each block its own stream), so it
    holds one block whatever its steps."""

    def __init__(self, settings: Settings, streams: list[tuple[int, ...]], steps: int,
                 shape: tuple[int, int], settle: float = 0.0) -> None:
        self.settings, self.streams, self.steps, self.shape = settings, streams, steps, shape
        self.still = steps - round(settle * steps)  # the first untransformed step
        self._block, self._values = -1, np.zeros((0, len(streams), 8), np.float32)

    def __getitem__(self, t: int) -> np.ndarray:
        block = t // PLAN_BLOCK if self.steps > PLAN_BLOCK else 0
        if block != self._block:
            self._block, self._values = block, self._draw(block)
        return self._values[t - block * PLAN_BLOCK if self.steps > PLAN_BLOCK else t]

    def _draw(self, block: int) -> np.ndarray:
        s, long = self.settings, self.steps > PLAN_BLOCK
        first = block * PLAN_BLOCK if long else 0
        count = min(PLAN_BLOCK, self.steps - first) if long else self.steps
        if not s.transforms.active or self.still <= first:
            return np.broadcast_to(IDENTITY, (count, len(self.streams), 8)).copy()
        plans = np.stack([s.transforms.sample(np.random.default_rng(
            [s.seed, *stream[:2], 1, *stream[2:], block] if long else
            [s.seed, *stream[:2], 1, *stream[2:]]), count, self.shape)
            for stream in self.streams], axis=1)
        plans[max(0, self.still - first):] = IDENTITY
        return plans
