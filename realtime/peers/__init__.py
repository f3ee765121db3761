"""The peers: other face landmarkers, each in a process of its own, spoken to over one
line protocol (``mediapipe_peer``'s docstring): MediaPipe Face Mesh in its own virtual
environment (its protobuf < 5 and OpenCV clash with ours), dlib's 68-point predictor,
and our own face processor for comparison. The peers benchmark
(``python -m realtime.bench --part peers``) times them side by side; the expression
labels (realtime.train.expression) and the expression benchmark (realtime.eval.expression)
read faces with MediaPipe through them.

``workers`` starts a peer's process and speaks the protocol; ``mediapipe_peer`` (a
standalone script) serves it in MediaPipe's environment; ``ours`` and ``dlib_peer`` are
the peers that run in ours (``python -m realtime.peers --worker NAME``).
``python -m realtime.peers --setup`` makes MediaPipe's environment.
"""

from realtime.peers.workers import PeerError, Worker, dlib_model, mediapipe_python, setup_mediapipe

__all__ = ["PeerError", "Worker", "dlib_model", "mediapipe_python", "setup_mediapipe"]
