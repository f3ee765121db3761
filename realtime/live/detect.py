"""MTCNN face detector (Zhang et al. 2016): P-Net proposes faces over an image
pyramid, R-Net and O-Net refine them, with bounding-box regression and five landmarks.

The pyramid runs batched: every scale is packed into one mosaic image and P-Net
runs once over it (it is fully convolutional, so each output cell sees only its
12 x 12 window; cells whose window straddles two scales are dropped). One forward
instead of ~10 matters on a GPU where launches dominate; R-Net and O-Net then run
on all candidates in one batch each, cropped with the same RoIAlign-style sampler
as the PRNet crops.

Weights: realtime/weights/mtcnn.pt, the original MTCNN weights converted by
tools/convert_mtcnn.py (MIT, see realtime/weights/MTCNN_LICENSE.md).

Coordinates follow realtime.core.types: pixel centres at integers, so a box edge lies on
half-integers; boxes are (x1, y1, x2, y2) edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.core.paths import WEIGHTS as MODEL_DIR
from realtime.core.paths import resource
from realtime.core.types import Detections, UserError
from realtime.live.crop import Octaves, area_resize, to_tensor, warp

WEIGHTS = MODEL_DIR / "mtcnn.pt"
MIN_FACE = 20.0  # px: the smallest default min_face


class DetectorError(UserError, RuntimeError):
    """The detector cannot run; the message says why and what to do."""


def _block(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]


class PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _block(3, 10, 3)
        self.conv2, self.prelu2 = _block(10, 16, 3)
        self.conv3, self.prelu3 = _block(16, 32, 3)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _block(3, 28, 3)
        self.conv2, self.prelu2 = _block(28, 48, 3)
        self.conv3, self.prelu3 = _block(48, 64, 2)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(self.prelu3(self.conv3(x)).flatten(1)))
        return self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _block(3, 32, 3)
        self.conv2, self.prelu2 = _block(32, 64, 3)
        self.conv3, self.prelu3 = _block(64, 64, 3)
        self.conv4, self.prelu4 = _block(64, 128, 2)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(self.prelu4(self.conv4(x)).flatten(1)))
        return self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first. ``mode="min"`` divides
    the overlap by the smaller box, which also drops a small box inside a big one."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(denom, 1e-9)]
    return np.asarray(keep, np.int64)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    wh = np.tile(boxes[:, 2:4] - boxes[:, 0:2], 2)
    return boxes + reg * wh


def _square(boxes: np.ndarray) -> np.ndarray:
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(1, keepdims=True) / 2
    return np.concatenate([c - half, c + half], 1)


def _box_affines(boxes: np.ndarray, n: int) -> np.ndarray:
    """Affines mapping an n x n crop's pixels onto each box (edges to edges)."""
    a = np.zeros((len(boxes), 2, 3))
    sx, sy = (boxes[:, 2] - boxes[:, 0]) / n, (boxes[:, 3] - boxes[:, 1]) / n
    a[:, 0, 0], a[:, 1, 1] = sx, sy
    a[:, 0, 2], a[:, 1, 2] = boxes[:, 0] + 0.5 * sx, boxes[:, 1] + 0.5 * sy
    return a


@dataclass
class _Level:
    x: int
    y: int
    w: int
    h: int
    sx: float  # level px per frame px
    sy: float


def _pack(width: int, height: int, min_face: float, factor: float) -> tuple[list[_Level], int, int]:
    """Shelf-pack the pyramid's scales into one canvas at even offsets (P-Net's stride
    is 2, so each scale's cells line up exactly as if run alone)."""
    levels, s = [], 12.0 / min_face
    while min(width, height) * s >= 12:
        w, h = max(12, round(width * s)), max(12, round(height * s))
        levels.append(_Level(0, 0, w, h, w / width, h / height))
        s *= factor
    canvas_w = sum(lv.w + lv.w % 2 for lv in levels[:2])
    x = y = shelf = 0
    for lv in levels:
        if x + lv.w > canvas_w:
            x, y, shelf = 0, y + shelf, 0
        lv.x, lv.y = x, y
        x += lv.w + lv.w % 2
        shelf = max(shelf, lv.h + lv.h % 2)
    return levels, canvas_w, y + shelf


class MTCNN:
    """Faces in a BGR frame -> Detections, best first.

    min_face: smallest face side (frame px) searched for; smaller finds smaller faces
        and costs more (P-Net's first scale is 12 / min_face). None: 1/14 of the
        frame's shorter side, at least 20 px (20 on 160 x 120 video, 34 on 640 x 480):
        a face further from a webcam than that is too small to reconstruct well anyway.
    thresholds: P-, R-, O-Net score thresholds.
    factor: pyramid scale step.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        min_face: float | None = None,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
    ):
        path = resource(weights if weights is not None else WEIGHTS)
        if not path.is_file():
            raise DetectorError(
                f"MTCNN weights {path} not found: restore realtime/weights/mtcnn.pt from the "
                "repository or rebuild it with tools/convert_mtcnn.py"
            )
        try:
            with path.open("rb") as f:
                state = torch.load(f, map_location="cpu", weights_only=True)
            self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
            for name in ("pnet", "rnet", "onet"):
                sub = {k[len(name) + 1 :]: v for k, v in state.items() if k.startswith(name + ".")}
                getattr(self, name).load_state_dict(sub)
        except Exception as e:
            raise DetectorError(
                f"MTCNN weights {path} are unreadable or incomplete ({type(e).__name__}): "
                "rebuild them with tools/convert_mtcnn.py"
            ) from None
        if min_face is not None and min_face < 12:
            raise DetectorError(f"min_face {min_face} is below MTCNN's 12 px window: use 12 or more")
        self.device = torch.device(device)
        # channels-last: pooling and convolutions 1.5-3x quicker on a CPU (memory_format is a
        # keyword Module.to takes that torch's overloads leave out)
        for net in (self.pnet, self.rnet, self.onet):
            net.eval().to(self.device, memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
        self.min_face = None if min_face is None else float(min_face)
        self.thresholds, self.factor = tuple(thresholds), float(factor)
        self._layouts: dict[tuple[int, int], tuple] = {}

    def _layout(self, width: int, height: int) -> tuple:
        key = (width, height)
        if key not in self._layouts:
            min_face = self.min_face or max(MIN_FACE, min(width, height) / 14)
            levels, cw, ch = _pack(width, height, min_face, self.factor)
            oh, ow = (ch - 1) // 2 - 4, (cw - 1) // 2 - 4  # P-Net output size (ceil pool)
            owner = torch.full((max(oh, 0), max(ow, 0)), -1, dtype=torch.long)
            for i, lv in enumerate(levels):  # cells whose 12 px window lies inside the level
                r0, c0 = lv.y // 2, lv.x // 2
                owner[r0 : r0 + (lv.h - 12) // 2 + 1, c0 : c0 + (lv.w - 12) // 2 + 1] = i
            self._layouts[key] = (levels, cw, ch, owner)
        return self._layouts[key]

    @staticmethod
    def _normalise(x: torch.Tensor) -> torch.Tensor:
        return ((x * 255.0 - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray | torch.Tensor | Octaves) -> Detections:
        """``image``: (H, W, 3) uint8 BGR, or a tensor / Octaves from realtime.live.crop.to_tensor."""
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected an (H, W, 3) uint8 BGR image, got {image.dtype} {image.shape}")
            image = to_tensor(image, self.device)
        octaves = image if isinstance(image, Octaves) else Octaves(image)
        img = octaves.levels[0]
        height, width = img.shape[-2:]
        levels, cw, ch, owner = self._layout(width, height)
        if not levels:
            return Detections.empty()
        boxes = self._stage1(img, levels, cw, ch, owner)
        if len(boxes):
            boxes = self._stage2(octaves, boxes)
        if not len(boxes):
            return Detections.empty()
        boxes, scores, points = self._stage3(octaves, boxes)
        return Detections(boxes.astype(np.float32), scores.astype(np.float32), points.astype(np.float32))

    @torch.inference_mode()
    def verify(self, image: np.ndarray | torch.Tensor | Octaves, boxes: np.ndarray) -> np.ndarray:
        """O-Net's face score (0-1) for each of ``boxes`` (N, 4): a cheap check that a
        tracked region still holds a face."""
        if isinstance(image, np.ndarray):
            image = to_tensor(image, self.device)
        octaves = image if isinstance(image, Octaves) else Octaves(image)
        boxes = _square(np.asarray(boxes, np.float64).reshape(-1, 4))
        if not len(boxes):
            return np.zeros(0, np.float32)
        score = self.onet(self._normalise(warp(octaves, _box_affines(boxes, 48), 48)))[0]
        return score.cpu().numpy().astype(np.float32)

    def _stage1(self, img, levels, cw, ch, owner) -> np.ndarray:
        canvas = torch.zeros((1, ch, cw, 3), dtype=img.dtype, device=img.device).permute(0, 3, 1, 2)
        for lv in levels:
            canvas[..., lv.y : lv.y + lv.h, lv.x : lv.x + lv.w] = area_resize(img, lv.h, lv.w)
        prob, reg = self.pnet(self._normalise(canvas))
        prob = prob[0].cpu()
        keep = (prob >= self.thresholds[0]) & (owner >= 0)
        rows, cols = torch.nonzero(keep, as_tuple=True)
        if not len(rows):
            return np.zeros((0, 4))
        lv_i = owner[rows, cols].numpy()
        score = prob[rows, cols].numpy().astype(np.float64)
        reg = reg[0].cpu()[:, rows, cols].T.numpy().astype(np.float64)
        lx = np.array([lv.x for lv in levels])[lv_i]
        ly = np.array([lv.y for lv in levels])[lv_i]
        sx = np.array([lv.sx for lv in levels])[lv_i]
        sy = np.array([lv.sy for lv in levels])[lv_i]
        px, py = 2 * cols.numpy() - lx, 2 * rows.numpy() - ly  # window origin in level px
        boxes = np.stack([px / sx, py / sy, (px + 12) / sx, (py + 12) / sy], 1) - 0.5
        # NMS within each scale (offset scales apart so they never overlap), then across
        off = (lv_i * (max(cw, ch) * 100.0))[:, None]
        keep = nms(boxes + off, score, 0.5)
        boxes, score, reg = boxes[keep], score[keep], reg[keep]
        keep = nms(boxes, score, 0.7)
        return _square(_regress(boxes[keep], reg[keep]))

    def _stage2(self, octaves: Octaves, boxes: np.ndarray) -> np.ndarray:
        crops = warp(octaves, _box_affines(boxes, 24), 24)
        score, reg = self.rnet(self._normalise(crops))
        score, reg = score.cpu().numpy().astype(np.float64), reg.cpu().numpy().astype(np.float64)
        ok = score > self.thresholds[1]
        boxes, score, reg = boxes[ok], score[ok], reg[ok]
        keep = nms(boxes, score, 0.7)
        return _square(_regress(boxes[keep], reg[keep]))

    def _stage3(self, octaves: Octaves, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        crops = warp(octaves, _box_affines(boxes, 48), 48)
        score, reg, pts = (t.cpu().numpy().astype(np.float64) for t in self.onet(self._normalise(crops)))
        ok = score > self.thresholds[2]
        boxes, score, reg, pts = boxes[ok], score[ok], reg[ok], pts[ok]
        wh = boxes[:, 2:4] - boxes[:, 0:2]
        points = np.stack(
            [
                boxes[:, None, 0] + pts[:, :5] * wh[:, None, 0],
                boxes[:, None, 1] + pts[:, 5:] * wh[:, None, 1],
            ],
            -1,
        )
        boxes = _regress(boxes, reg)
        keep = nms(boxes, score, 0.7, mode="min")
        return boxes[keep], score[keep], points[keep]
