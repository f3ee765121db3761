"""Decode recovers a known mesh: landmarks to the pixel, pose to the degree."""

import numpy as np
import pytest

from realtime.core.uv import bfm_shape, build_layout
from realtime.live.decode import Decoder, angles_to_rotation, rotation_to_angles


@pytest.mark.parametrize("resolution", [128, 256])
def test_decode_known_mesh(bfm, resolution):
    layout, raster = build_layout(bfm, resolution)
    # A known head: the mean face, turned, scaled and placed in a 640x480 frame.
    canon = bfm_shape(bfm) * np.array([1.0, -1.0, 1.0])
    canon = canon - canon.mean(0)
    canon *= 180.0 / np.ptp(canon[:, 0])
    rot = angles_to_rotation(-12.0, 35.0, 20.0)
    verts = 1.3 * canon @ rot.T + np.array([300.0, 220.0, 150.0])
    # The crop that sees it (frame -> crop similarity), and the map in crop pixels.
    s, c = resolution / 330.0, (resolution - 1) / 2
    to_crop = np.array([[s, 0, c - s * 300], [0, s, c - s * 220]])
    in_crop = np.concatenate([verts[:, :2] @ to_crop[:, :2].T + to_crop[:, 2], verts[:, 2:] * s], 1)
    face = (in_crop[raster.vertex_ids] * raster.weights[..., None]).sum(1)
    pos = np.zeros((resolution * resolution, 3), np.float32)
    pos[raster.pixels] = face
    kflat = layout.kpt_ind[1] * resolution + layout.kpt_ind[0]
    pos[kflat] = in_crop[bfm["kpt_ind"]]  # landmark pixels hold the landmark vertex
    maps = pos.reshape(resolution, resolution, 3).transpose(2, 0, 1)[None]
    to_frame = np.linalg.inv(np.vstack([to_crop, [0, 0, 1]]))[:2][None]

    rec = Decoder(layout).decode(maps, to_frame, [7])[0]
    assert rec.track_id == 7
    assert rec.vertices.shape == (layout.face_mask.sum(), 3)
    err = np.linalg.norm(rec.landmarks[:, :2] - verts[bfm["kpt_ind"], :2], axis=1)
    assert err.max() < 0.5
    assert np.abs(rec.landmarks[:, 2] - verts[bfm["kpt_ind"], 2]).max() < 0.5
    # Rotation error as an angle, and the Euler angles read back.
    cos = (np.trace(rec.pose.rotation.T @ rot) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))) < 1.0
    assert np.allclose(rec.pose.angles, [-12.0, 35.0, 20.0], atol=1.0)
    assert abs(rec.pose.scale - 1.3) < 0.02


def test_angles_round_trip():
    for angles in ([0, 0, 0], [10, -40, 5], [-30, 60, -25]):
        assert np.allclose(rotation_to_angles(angles_to_rotation(*angles)), angles, atol=1e-4)
