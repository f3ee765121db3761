"""Offline evaluation, apart from the frame path: landmark accuracy on AFLW2000-3D
(``python -m realtime.eval``), the face swap's quality (``python -m realtime.eval swap``)
and the occlusion network's (``python -m realtime.eval occlusion``)."""
