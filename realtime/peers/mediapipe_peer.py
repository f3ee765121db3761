"""MediaPipe Face Mesh as a benchmark peer, in a process of its own.

mediapipe 0.10.14 (the last wheel that ships the face models) pins protobuf < 5 and pulls
opencv-contrib-python, which clash with our dependencies, so it lives in its own virtual
environment (``python -m realtime.peers --setup``) and this file runs there as a
script. It is standalone on purpose: it imports only numpy, cv2 and mediapipe (never
``realtime``), so the peer's environment needs nothing of ours.

The same line protocol drives every peer (``realtime.peers`` runs ours and dlib
through ``serve`` too), so all of them are timed the same way, inside their own process,
with the parent waiting idle: one JSON object per line on stdin, one reply per line on
stdout (the real stdout; anything a library prints goes to stderr).

- at start the worker says ``{"ready": true, "load_s", "versions"}`` (load_s: building the
  peer, its imports included);
- ``{"cmd": "open", "frames": "x.npy" or null, "video": true}``: memory-map a (N, H, W, 3)
  BGR uint8 array (if given) and start a fresh tracker (video: follow the face from frame
  to frame, as live; not video: every image on its own);
- ``{"cmd": "run", "start": a, "stop": b}``: process frames a..b-1 in order; reply
  ``{"ms": [...], "cpu_ms": [...], "faces": [[face, ...] per frame]}``, a face being
  68 [x, y] pairs in 0-based pixel-centre coordinates;
- ``{"cmd": "image", "path": "x.jpg", "rect": [l, t, r, b] or null}``: one image file
  on its own (``rect``: a face box to use instead of the peer's detector, where it can);
- ``{"cmd": "quit"}``.

``ms`` is wall time around the peer's call, colour conversion included (what a user's
loop pays); ``cpu_ms`` the process's CPU time over it, all its threads together.

``python mediapipe_peer.py --draw IMAGE OUT.png`` draws the 468 points and the 68 mapped
ones with their numbers, to check ``MP_TO_68`` by eye.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

#: The 68-point (iBUG 300-W / dlib) scheme in MediaPipe Face Mesh's 468-vertex topology:
#: entry k lists the mesh vertices whose mean is landmark k (0-based, dlib order: jaw 0-16
#: from the subject's right ear to the left, brows 17-26, nose 27-35, eyes 36-47, outer lip
#: 48-59, inner lip 60-67). Taken from the commonly used correspondence of Peizhi Yan,
#: https://github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks (mediapipe2dlib/mp2dlib.py,
#: Sep. 2024), where a few landmarks fall between two vertices and take their mean.
#: Checked by eye on AFLW2000-3D and media photos (``--draw``): brows on the upper edge as
#: in 300-W, eye corners on the corners, lip points on the outer and inner lip lines.
MP_TO_68: tuple[tuple[int, ...], ...] = (
    # jaw 0-16
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    # brows 17-21 (subject's right), 22-26 (left)
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30, lower nose 31-35
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # right eye 36-41, left eye 42-47
    (33,), (160,), (158,), (133,), (153,), (144,), (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lip 48-59
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lip 60-67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)  # fmt: skip


def to_68(mesh: np.ndarray) -> np.ndarray:
    """(468+, 2) mesh points -> (68, 2) in the 68-point scheme (``MP_TO_68``)."""
    return np.stack([mesh[list(ix)].mean(0) for ix in MP_TO_68])


class Peer(Protocol):
    """What ``serve`` drives: MeshPeer here, and ``realtime.peers``' own."""

    def versions(self) -> dict[str, str]: ...

    def open(self, video: bool) -> None: ...

    def __call__(self, bgr: np.ndarray, rect: list[float] | None = None) -> list[np.ndarray]: ...


class MeshPeer:
    """MediaPipe Face Mesh through its ``solutions`` API (the one whose models ship in
    the wheel; the Tasks API needs a separate download). Video mode tracks the face from
    the previous landmarks and runs the detector only when the track is lost, as
    ``static_image_mode=False`` does live; refine_landmarks off (468 points, no irises)
    unless ``refine``: then the attention model's finer lips, lids and irises (478
    points), which the expression labels and benchmark read. ``whole``: each face is
    the whole mesh, not the 68 points (the swap's UV alignment reads the nostrils)."""

    name = "mediapipe"

    def __init__(self, refine: bool = False, whole: bool = False) -> None:
        import mediapipe as mp

        self.mp = mp
        self.mesh = None
        self.refine = refine
        self.whole = whole

    def versions(self) -> dict[str, str]:
        import google.protobuf

        return {
            "mediapipe": self.mp.__version__,
            "numpy": np.__version__,
            "cv2": cv2.__version__,
            "protobuf": google.protobuf.__version__,
        }

    def open(self, video: bool) -> None:
        if self.mesh is not None:
            self.mesh.close()
        self.mesh = self.mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video, max_num_faces=1 if video else 4, refine_landmarks=self.refine
        )

    def mesh_points(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Every face's (468, 2) points in 0-based pixel-centre coordinates. MediaPipe's
        are normalised to the image's edges (0 = left edge, 1 = right edge), hence -0.5."""
        assert self.mesh is not None, "open() first"
        res = self.mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        h, w = bgr.shape[:2]
        out = []
        for face in res.multi_face_landmarks or []:
            p = np.array([(q.x, q.y) for q in face.landmark], np.float64)
            out.append(p * (w, h) - 0.5)
        return out

    def __call__(self, bgr: np.ndarray, rect: list[float] | None = None) -> list[np.ndarray]:
        """(68, 2) per face (``whole``: the mesh's points); ``rect`` is ignored: this API
        takes no face box."""
        return [p if self.whole else to_68(p) for p in self.mesh_points(bgr)]


def serve(load: Callable[[], Peer]) -> int:
    """Run the line protocol (module docstring) for the peer ``load()`` builds."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol
    sys.stdout = sys.stderr
    t0 = time.perf_counter()
    peer = load()
    t1 = time.perf_counter()
    ready = {"ready": True, "load_s": t1 - t0, "versions": peer.versions()}
    proto.write(json.dumps(ready) + "\n")
    frames = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.get("cmd")
        if cmd == "quit":
            break
        if cmd == "open":
            frames = np.load(msg["frames"], mmap_mode="r") if msg.get("frames") else None
            peer.open(bool(msg.get("video", True)))
            reply: dict = {"ok": True}
        elif cmd == "run":
            reply = {"ms": [], "cpu_ms": [], "faces": []}
            assert frames is not None, "run needs an open with frames first"
            for i in range(msg["start"], msg["stop"]):
                img = np.ascontiguousarray(frames[i])
                c0, w0 = time.process_time(), time.perf_counter()
                faces = peer(img)
                w1, c1 = time.perf_counter(), time.process_time()
                reply["ms"].append(1000 * (w1 - w0))
                reply["cpu_ms"].append(1000 * (c1 - c0))
                reply["faces"].append([np.round(f, 3).tolist() for f in faces])
        elif cmd == "image":
            img = cv2.imread(msg["path"])
            if img is None:
                reply = {"error": f"cannot read the image {msg['path']}"}
            else:
                w0 = time.perf_counter()
                faces = peer(img, msg.get("rect"))
                reply = {
                    "ms": 1000 * (time.perf_counter() - w0),
                    "faces": [np.round(f, 3).tolist() for f in faces],
                }
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        proto.write(json.dumps(reply) + "\n")
    return 0


def draw(image_path: str, out_path: str) -> int:
    """The mesh (small grey dots) and the 68 mapped points (numbered) on one photo, cropped
    to the faces and enlarged."""
    peer = MeshPeer()
    peer.open(video=False)
    img = cv2.imread(image_path)
    if img is None:
        print(f"error: cannot read {image_path}", file=sys.stderr)
        return 2
    meshes = peer.mesh_points(img)
    if not meshes:
        print(f"error: no face found in {image_path}", file=sys.stderr)
        return 1
    lo, hi = np.min([m.min(0) for m in meshes], 0), np.max([m.max(0) for m in meshes], 0)
    pad = 0.15 * (hi - lo).max()
    x0, y0 = np.maximum(lo - pad, 0).astype(int)
    x1, y1 = np.minimum(hi + pad, img.shape[1::-1]).astype(int)
    scale = 800 / max(x1 - x0, y1 - y0)
    big = cv2.resize(img[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    for mesh in meshes:
        for x, y in (mesh + 0.5 - (x0, y0)) * scale:
            cv2.circle(big, (int(x), int(y)), 1, (160, 160, 160), -1)
        pts = (to_68(mesh) + 0.5 - (x0, y0)) * scale
        for k, (x, y) in enumerate(pts):
            cv2.circle(big, (int(x), int(y)), 3, (0, 255, 0), -1)
            cv2.putText(big, str(k), (int(x) + 3, int(y) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
    cv2.imwrite(out_path, big)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", action="store_true", help="run the line protocol on stdin/stdout")
    ap.add_argument("--refine", action="store_true", help="refine_landmarks: finer lips, lids, irises")
    ap.add_argument("--mesh", action="store_true", help="reply with the whole mesh, not the 68 points")
    ap.add_argument("--draw", nargs=2, metavar=("IMAGE", "OUT"), help="draw the mapped 68 points")
    args = ap.parse_args(argv)
    if args.draw:
        return draw(*args.draw)
    if args.serve:
        return serve(lambda: MeshPeer(refine=args.refine, whole=args.mesh))
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
