"""What a training step is fed: the deterministic stream of augmented batches
(``StepBatches``), the sampling weights that even out pose and expression, and the
crops' way into the network (``to_input``, and the resizing a smaller student needs).

The stream is a function of the seed and the step alone, so a resumed run, or one fed
by data-loader workers in any order, sees the batches a straight run would.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from realtime.core.landmarks import Expression
from realtime.train.groundtruth import Batcher


class StepBatches(torch.utils.data.Dataset):
    """Item k is the augmented image half of training step ``start + k``.

    The crops and the random stream of a step depend on the seed and the step alone,
    so a run resumed, or fed by data-loader workers in any order, sees the same
    batches as one that ran straight through."""

    def __init__(
        self,
        batcher: Batcher,
        train_idx: np.ndarray,
        seed: int,
        batch: int,
        start: int,
        stop: int,
        p: np.ndarray | None = None,
        profiled: np.ndarray | None = None,
        share: float = 0.0,
    ):
        self.b, self.idx, self.seed, self.batch, self.p = batcher, train_idx, seed, batch, p
        self.start, self.stop = start, stop
        self.per_epoch = len(train_idx) // batch
        # --profiled: the last round(share * batch) of each batch are turned crops
        # (indices ``profiled``), each epoch a fresh draw without repeats.
        self.prof = profiled
        self.n_prof = round(share * batch) if profiled is not None and len(profiled) else 0

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = self.start + k
        epoch = step // self.per_epoch
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.idx) if self.p is None else rng.choice(self.idx, len(self.idx), p=self.p)
        j = (step % self.per_epoch) * self.batch
        sel = order[j : j + self.batch]
        if self.n_prof:
            turned = np.random.default_rng([self.seed, epoch, 1]).permutation(self.prof)
            at = (step % self.per_epoch) * self.n_prof
            sel = np.concatenate(
                [sel[: self.batch - self.n_prof], turned.take(range(at, at + self.n_prof), mode="wrap")]
            )
        imgs, affs = self.b.pixels(sel, np.random.default_rng([self.seed, step]))
        return imgs, affs, sel


def worker_init(_: int) -> None:
    """A data-loader process uses one thread: the processes are the parallelism."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def yaw_balanced(yaw: np.ndarray) -> np.ndarray:
    """Sampling probabilities that make |yaw| in [0, 30), [30, 60) and 60+ degrees
    equally frequent: the benchmark weighs the three bins equally, and AFLW has half
    as many turned faces as frontal ones."""
    bins = np.digitize(np.abs(yaw), (30.0, 60.0))
    p = 1.0 / np.bincount(bins, minlength=3)[bins]
    return p / p.sum()


def expression_balanced(lm: np.ndarray, yaw: np.ndarray | None, bins: int = 5) -> np.ndarray:
    """Sampling probabilities that make rare expressions (a wide-open mouth, closed
    lids) more frequent: each crop weighs 1/sqrt(count) of its mouth-opening bin times
    the same for its lid-opening bin (``bins`` equal widths over the middle 98 % of faces
    within 45 degrees of frontal, where the measures are read reliably); turned crops weigh the mean."""
    e = Expression.from_landmarks(lm)
    ok = np.isfinite(e.mouth) & np.isfinite(e.eyes)
    if yaw is not None:
        ok &= np.abs(yaw) < 45
    w = np.ones(len(lm))
    for m in (e.mouth, e.eyes):
        lo, hi = np.quantile(m[ok], (0.01, 0.99))
        edges = np.linspace(lo, hi, bins + 1)[1:-1]  # equal widths: the tails are the rare bins
        b = np.digitize(m, edges)
        count = np.bincount(b[ok], minlength=len(edges) + 1).astype(np.float64)
        w *= np.where(ok, 1.0 / np.sqrt(np.maximum(count[b], 1.0)), 1.0)
    w[~ok] = w[ok].mean()
    return w / w.sum()


def pick(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """``a[rows]``, for per-crop arrays that a run may not have (None)."""
    return None if a is None else a[rows]


def to_input(imgs: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, R, R, 3) uint8 -> (B, 3, R, R) float in [0, 1] on ``device``; the NHWC
    buffer seen through a permute is already channels-last, so nothing is copied."""
    x = torch.as_tensor(imgs).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def resize_input(x: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 3, R, R) crops -> (B, 3, side, side), area-averaged (antialiased bilinear),
    as a smaller student sees the crop its teacher sees."""
    if x.shape[-1] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


def rescale_affines(affs: np.ndarray, src: int, dst: int) -> np.ndarray:
    """(B, 2, 3) affines into ``src``-px crops -> into the same crops resized to ``dst``
    px (pixel centres at integers: x' = (x + 0.5) dst / src - 0.5)."""
    k = dst / src
    out = np.asarray(affs, np.float64) * k
    out[:, :, 2] += 0.5 * k - 0.5
    return out


def rescale_maps(maps: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """Position maps in ``src``-px crop pixels -> ``dst``-px crop pixels (x, y as
    ``rescale_affines``; z scales)."""
    if src == dst:
        return maps
    k = dst / src
    out = maps * k
    out[:, :2] += 0.5 * k - 0.5
    return out
