"""Peers in the benchmark (``python -m realtime.bench --part peers``): our face
processing, MediaPipe Face Mesh and dlib's 68-point shape predictor on the same frames,
side by side in one run.

Each peer runs in a process of its own and speaks one line protocol
(``realtime.peers.mediapipe_peer``): ours (``FaceProcessor``, onnxruntime engine) and
dlib in this environment, MediaPipe in its own virtual environment, because mediapipe
0.10.14 (the last wheel that ships the face models) pins protobuf < 5 and pulls
opencv-contrib-python, which clash with ours. Every figure is timed inside the peer's
process while the others wait idle, so no peer pays for another's threads, and start-up
is measured the same way for all: from process start to the first frame's result.

The figures, per peer:

- ms per frame (median, p95) and fps on the carphone clip upscaled to 640x480 and
  1280x720 (the pipeline benchmark's frames), in video mode (faces followed from frame
  to frame, as live), colour conversion included. The peers take turns in blocks of
  frames, round-robin, rotating who goes first, so a background load that comes and
  goes hits all of them alike and the ratios hold on a busy machine.
- CPU ms per frame: the process's CPU time over the call, all its threads together.
- start-up: process start to first result, the first start in the run (disk caches may
  be cold; ours may export its ONNX model) and a second, warm one.
- raw still-face jitter: the astronaut photo shifted by random sub-pixel amounts (the
  frames of tests/test_smooth.py: 30 frames, uniform +-0.5 px, seed 0, first 3 skipped),
  RMS frame-to-frame motion of the 68 landmarks before any smoothing. "shift removed"
  subtracts the known shift first (the landmarks' own noise); "raw" keeps it, as the
  test does (the shifts alone make about 0.58 px).
- 68-point NME on AFLW2000-3D dev: each peer finds the face with its own detector on
  the whole 450x450 image (the face nearest the ground truth's box is taken), NME is the
  protocol's (realtime.eval.landmarks: mean 2D error / sqrt(w*h) of the ground truth's
  box, per yaw bin and balanced). Ours also by the protocol proper (crop from the ground
  truth's box, no detector), the figure the model card quotes. A face a peer misses is
  counted as missed, not scored; the "common" figures are on the images every peer found.
  MediaPipe's 468 points become 68 through ``mediapipe_peer.MP_TO_68``.

One job a module: the peers' processes and their protocol are realtime.peers (the
expression labels and benchmark use them too); here ``measures`` makes the frames and
the figures, ``run`` runs the peers side by side, ``report`` writes the table and the
chart.
"""

from realtime.bench.peers.run import main, run_peers
from realtime.peers.workers import dlib_model, mediapipe_python, setup_mediapipe

__all__ = ["dlib_model", "main", "mediapipe_python", "run_peers", "setup_mediapipe"]
