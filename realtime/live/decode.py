"""Position maps -> landmarks, dense mesh and head pose, in frame pixels.

The per-vertex work (gather the face pixels, map them back through each crop's
inverse affine) is a Numba loop over all faces at once, so no Python runs per vertex.
Pose is a least-squares similarity fit (Umeyama) of a fixed subset of vertices to
the layout's canonical face: a 3x3 SVD per face. With a lid head's openings (the
engine's ``EngineOutput.lids``) each eye's lids are moved to them (``open_lids``).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from realtime.core.landmarks import EYE_L, EYE_R, eye_distance, eye_openings
from realtime.core.lidlip import LidLipWarp
from realtime.core.types import Pose, Reconstruction
from realtime.core.uv import UVLayout

POSE_POINTS = 2000  # vertices used for the pose fit: plenty for a 3x3 problem
#: Of a lid's change of opening, the share the upper lid takes (a blink is mostly the
#: upper lid coming down); the lower lid takes the rest.
UPPER_SHARE = 0.75
#: |yaw| (degrees) up to which a lid head's openings count in full, and from which they
#: are not used: its labels (MediaPipe's, realtime.train.lid_head) come from faces
#: turned up to 60 degrees, few of them beyond 45; on profiles it guesses.
LID_YAW = (45.0, 60.0)


@numba.njit(cache=True, fastmath=True)
def _to_frame(maps: np.ndarray, face_ind: np.ndarray, to_frame: np.ndarray) -> np.ndarray:
    """(B, 3, R, R) crop-pixel maps -> (B, F, 3) frame-pixel vertices."""
    b_n, _, r, _ = maps.shape
    out = np.empty((b_n, face_ind.shape[0], 3), np.float32)
    for b in range(b_n):
        a = to_frame[b]
        zs = math.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]))
        for i in range(face_ind.shape[0]):
            row, col = face_ind[i] // r, face_ind[i] % r
            x, y, z = maps[b, 0, row, col], maps[b, 1, row, col], maps[b, 2, row, col]
            out[b, i, 0] = a[0, 0] * x + a[0, 1] * y + a[0, 2]
            out[b, i, 1] = a[1, 0] * x + a[1, 1] * y + a[1, 2]
            out[b, i, 2] = z * zs
    return out


def rotation_to_angles(rot: np.ndarray) -> np.ndarray:
    """(pitch, yaw, roll) in degrees for rot = Rz(roll) @ Ry(yaw) @ Rx(pitch)."""
    yaw = math.asin(max(-1.0, min(1.0, -float(rot[2, 0]))))
    pitch = math.atan2(float(rot[2, 1]), float(rot[2, 2]))
    roll = math.atan2(float(rot[1, 0]), float(rot[0, 0]))
    return np.degrees(np.array([pitch, yaw, roll], np.float32))


def angles_to_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Inverse of rotation_to_angles (degrees in, (3, 3) out)."""
    p, y, r = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares dst ~ s R src + t (Umeyama 1991). Returns R, s, t."""
    ms, md = src.mean(0), dst.mean(0)
    xs, xd = src - ms, dst - md
    u, sv, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = (u * d) @ vt
    scale = float((sv * d).sum() / (xs**2).sum(1).mean())
    return rot, scale, md - scale * rot @ ms


class Decoder:
    """Turns a batch of position maps into Reconstructions for one layout."""

    def __init__(self, layout: UVLayout):
        self.layout = layout
        self.face_ind = layout.face_ind.astype(np.int64)
        self.kpt_rows = layout.kpt_rows  # the 68 landmarks' rows in the dense vertex order
        step = max(1, len(self.face_ind) // POSE_POINTS)
        self.pose_rows = np.arange(0, len(self.face_ind), step)
        self.pose_ref = layout.canonical[self.pose_rows].astype(np.float64)
        self._face_ind_on: torch.Tensor | None = None  # face_ind on the GPU, for maps there
        warp = LidLipWarp.from_layout(layout)
        eyes = len(EYE_L + EYE_R)  # CONTROLS starts with the two eyes' six points
        rows = np.flatnonzero(np.abs(warp.weights[:, :eyes]).sum(1) > 1e-6)
        self._lid_rows, self._lid_weights = warp.rows[rows], warp.weights[rows, :eyes]

    def vertices(self, maps: np.ndarray | torch.Tensor, to_frame: np.ndarray) -> np.ndarray:
        """(B, 3, R, R) crop-pixel maps, (B, 2, 3) affines -> (B, F, 3) frame pixels.

        Maps on a GPU are gathered and mapped there, so only the vertices (about half
        the map's bytes) come back; on the CPU a Numba loop does it."""
        if isinstance(maps, torch.Tensor) and maps.device.type != "cpu":
            return self.vertices_torch(maps, to_frame)
        if isinstance(maps, torch.Tensor):
            maps = maps.numpy()
        return _to_frame(
            np.ascontiguousarray(maps, np.float32), self.face_ind, np.ascontiguousarray(to_frame, np.float64)
        )

    def vertices_torch(self, maps: torch.Tensor, to_frame: np.ndarray) -> np.ndarray:
        """``vertices`` in torch, where the maps are (the GPU path; any device works)."""
        device = maps.device
        if self._face_ind_on is None or self._face_ind_on.device != device:
            self._face_ind_on = torch.as_tensor(self.face_ind, device=device)
        b = maps.shape[0]
        pts = maps.reshape(b, 3, -1).index_select(2, self._face_ind_on)  # (B, 3, F)
        a = torch.as_tensor(np.asarray(to_frame, np.float32), device=device)  # (B, 2, 3)
        zs = torch.sqrt(torch.abs(a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]))
        xy = torch.baddbmm(a[:, :, 2:], a[:, :, :2], pts[:, :2])  # (B, 2, F)
        out = torch.cat([xy, pts[:, 2:] * zs[:, None, None]], 1).transpose(1, 2)
        return out.contiguous().cpu().numpy()

    def pose(self, vertices: np.ndarray) -> Pose:
        rot, scale, t = fit_similarity(self.pose_ref, vertices[self.pose_rows].astype(np.float64))
        return Pose(rot.astype(np.float32), rotation_to_angles(rot), scale, t.astype(np.float32))

    def open_lids(self, verts: np.ndarray, lids: np.ndarray, share: np.ndarray | None = None) -> None:
        """Move each face's lids, in place, to ``lids`` (B, 2): each eye's opening over
        the eye distance (realtime.core.model.LID_OUTPUTS), as a lid head reads it from
        the bottleneck. The upper lid points move across the eye's corner line by
        UPPER_SHARE of the change, the lower ones by the rest, and the lid warp
        (realtime.core.lidlip, the one the training labels were drawn with) carries the
        skin around them; the corners, brows and cheeks stay. ``verts``: (B, F, 3);
        ``share`` (B,): how much of the way each face's lids move (default all)."""
        pts = verts[:, self.kpt_rows, :2].astype(np.float64)  # (B, 68, 2)
        close = (eye_openings(pts) - np.maximum(lids, 0.0)) * eye_distance(pts)[:, None]  # px; > 0 closes
        if share is not None:
            close *= share[:, None]
        offsets = np.zeros((len(verts), len(EYE_L) * 2, 2))  # the eyes' controls, 36-47
        for e, (c0, _, _, c3, _, _) in enumerate((EYE_L, EYE_R)):
            line = pts[:, c3] - pts[:, c0]  # corner to corner; a quarter turn points down
            down = np.stack([-line[:, 1], line[:, 0]], 1) / np.linalg.norm(line, axis=1).clip(1e-6)[:, None]
            for k, part in ((1, UPPER_SHARE), (2, UPPER_SHARE), (4, UPPER_SHARE - 1), (5, UPPER_SHARE - 1)):
                offsets[:, 6 * e + k] = (close[:, e] * part)[:, None] * down
        verts[:, self._lid_rows, :2] += self._lid_weights @ offsets.astype(np.float32)  # (B, V, 2)

    def decode(
        self,
        maps: np.ndarray | torch.Tensor,
        to_frame: np.ndarray,
        track_ids: list[int],
        lids: np.ndarray | None = None,
    ) -> list[Reconstruction]:
        """One Reconstruction per map; ``lids`` (B, 2): a lid head's openings, which
        the lids are moved to (``open_lids``) on faces turned less than ``LID_YAW``.
        The pose is fitted before: a blink does not turn the head."""
        verts = self.vertices(maps, to_frame)
        poses = [self.pose(v) for v in verts]
        if lids is not None:
            yaw = np.abs([float(p.angles[1]) for p in poses])
            lo, hi = LID_YAW
            self.open_lids(verts, lids, np.clip((hi - yaw) / (hi - lo), 0.0, 1.0))
        return [  # verts[b][self.kpt_rows] is a copy already (fancy indexing)
            Reconstruction(track_id=tid, landmarks=verts[b][self.kpt_rows], vertices=verts[b], pose=poses[b])
            for b, tid in enumerate(track_ids)
        ]
