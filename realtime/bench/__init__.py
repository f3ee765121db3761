"""Speed as a measured product feature, apart from the frame path:
``python -m realtime.bench --part all|model|pipeline|components|startup|peers|gpu|roofline|soak``.

model: every engine on the full and lite models (realtime.bench.model); pipeline: the
real app in child processes, unpaced and paced (realtime.bench.pipeline); components:
stages timed alone (realtime.bench.components); startup: cold and warm time to the
first frame (realtime.bench.startup); peers: MediaPipe Face Mesh and dlib on the same
frames as ours (realtime.bench.peers); gpu: where the time goes on a CUDA GPU
(realtime.bench.gpu); roofline: a projection for GPUs we do not have
(realtime.bench.roofline); soak: memory over a long live run (realtime.bench.soak).
"""
