"""Face mapping: one swap source per person. Faces take the --source-face photos left to
right in the order they are found and keep theirs while they are followed; on a real
photo of two people, each output face is nearer its own source than the other (dlib's
recogniser, the swap benchmark's); a source photo with two faces is one clear line."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, need

from realtime.core.types import Frame, Pose, Reconstruction
from realtime.render.effects import Effect
from realtime.render.effects.facemap import FaceMap

pytestmark = pytest.mark.gl


def _face(track: int, x: float) -> Reconstruction:
    lm = np.zeros((68, 3), np.float32)
    lm[:, 0] = x + np.linspace(0, 50, 68)
    pose = Pose(np.eye(3, dtype=np.float32), np.zeros(3, np.float32), 1.0, np.zeros(3, np.float32))
    return Reconstruction(track, lm, np.zeros((10, 3), np.float32), pose)


def _drawn(face_map: FaceMap, faces: list[Reconstruction]) -> dict[int, str]:
    """track id -> label of the source drawing it (faces not drawn are left out)."""
    return {faces[i].track_id: effect.label for effect, which in face_map.per_face(faces) for i in which}


def _source(label: str) -> Effect:
    effect = Effect()
    effect.label = label
    return effect


def test_faces_take_sources_left_to_right_and_keep_them():
    a, b = _source("A"), _source("B")
    fm = FaceMap([a, b], rest="none")
    # two faces found on one frame: the left one (track 7) takes A
    assert _drawn(fm, [_face(8, 400), _face(7, 100)]) == {7: "A", 8: "B"}
    # they move past each other: each keeps its source
    assert _drawn(fm, [_face(8, 50), _face(7, 500)]) == {7: "A", 8: "B"}
    # a third face gets none (rest="none"); the left face leaves, a new face takes its A
    assert _drawn(fm, [_face(8, 50), _face(7, 500), _face(9, 300)]) == {7: "A", 8: "B"}
    assert _drawn(fm, [_face(8, 50), _face(10, 300)]) == {8: "B", 10: "A"}
    # pinned by hand (the panel's card): its own source, or its live self
    fm.pin(8, _source("C"), "C")
    fm.pin(10, None)
    assert _drawn(fm, [_face(8, 50), _face(10, 300)]) == {8: "C"}
    assert fm.mapping() == {8: "C", 10: None}
    assert _drawn(FaceMap([a], rest="first"), [_face(1, 0), _face(2, 200)]) == {1: "A", 2: "A"}


def test_two_people_each_get_their_own_source(media, tmp_path):
    """The face in two_people.jpg on the left takes the first photo, the right one the
    second: each output face is nearer its own source than the other's."""
    from realtime.eval.identity import Identity, IdentityUnavailable

    try:
        ident = Identity()
    except IdentityUnavailable as e:
        need(False, f"the recogniser is missing ({e})")
    photo = media / "two_people.jpg"
    sources = [media / "miranda_portrait.png", media / "astronaut.png"]
    out = tmp_path / "out.png"
    cmd = [
        sys.executable,
        "run_live.py",
        "--input",
        photo,
        "--no-window",
        "--backend",
        "eager",
        "--output",
        out,
    ]
    for s in sources:
        cmd += ["--source-face", s]
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    image, swapped = cv2.imread(str(photo)), cv2.imread(str(out))
    faces = _faces_left_to_right(image)
    assert len(faces) == 2
    wanted = [ident.embed(cv2.imread(str(s))) for s in sources]
    for i, box in enumerate(faces):
        got = ident.embed(swapped, box)
        assert got is not None, f"no face left at {box}"
        own, other = (float(np.linalg.norm(got - wanted[k])) for k in (i, 1 - i))
        assert own < other, f"face {i}: {own:.3f} to its own source, {other:.3f} to the other"


def _faces_left_to_right(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    from realtime.core.weights import load_bundle
    from realtime.live.faces import FaceProcessor

    proc = FaceProcessor.from_bundle(load_bundle(), "eager", "cpu", filter_factory=None)
    recs = sorted(proc.process(Frame(image, 0, 0.0)).reconstructions, key=lambda r: r.landmarks[:, 0].mean())
    return [tuple(int(v) for v in (*r.landmarks[:, :2].min(0), *r.landmarks[:, :2].max(0))) for r in recs]


def test_a_source_photo_with_two_faces_is_one_clear_line(media):
    photo = media / "two_people.jpg"
    cmd = [sys.executable, "run_live.py", "--demo", "--no-window", "--frames", "1", "--source-face", photo]
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "two_people.jpg" in line and "2 faces" in line and "one person" in line, line
