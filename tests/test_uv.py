"""Our UV layout is PRNet's: same landmark pixels, nearly the same face region."""

import cv2
import numpy as np

from realtime.core.uv import WEIGHT_FACE, WEIGHT_KPT, WEIGHT_REGION, build_layout


def test_layout_matches_prnet_files(bfm, shared):
    layout, _ = build_layout(bfm, 256)
    prnet_kpt = np.loadtxt(shared / "prnet-uv" / "uv_kpt_ind.txt").astype(int)
    assert (layout.kpt_ind == prnet_kpt).all()
    theirs = cv2.imread(str(shared / "prnet-uv" / "uv_face_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    iou = (theirs & layout.face_mask).sum() / (theirs | layout.face_mask).sum()
    assert iou > 0.88, iou
    # Weight mask: 16 at exactly the 68 landmarks, 4 around eyes/nose/mouth, 3 elsewhere on
    # the face, 0 off it; the 4-region is about as large as PRNet's own.
    w = layout.weight_mask
    assert (w == WEIGHT_KPT).sum() == 68
    assert set(np.unique(w[~layout.face_mask])) == {0.0}
    assert set(np.unique(w[layout.face_mask])) == {WEIGHT_FACE, WEIGHT_REGION, WEIGHT_KPT}
    prnet_region = (cv2.imread(str(shared / "prnet-uv" / "uv_weight_mask.png"), 0) == 64).sum()
    assert 0.7 < (w == WEIGHT_REGION).sum() / prnet_region < 1.3


def test_half_resolution_layout_is_consistent(bfm):
    layout, _ = build_layout(bfm, 128)
    assert layout.face_mask[layout.kpt_ind[1], layout.kpt_ind[0]].all()
    full, _ = build_layout(bfm, 256)
    # Landmarks at 128 px sit at half their 256 px position (within rounding).
    assert np.abs(layout.kpt_ind * 255 / 127 - full.kpt_ind).max() <= 2.5
    # Every mesh triangle joins face pixels, and the mesh covers the face.
    tri = layout.triangles
    assert tri.min() >= 0 and tri.max() < layout.face_mask.sum()
    assert len(np.unique(tri)) > 0.95 * layout.face_mask.sum()
