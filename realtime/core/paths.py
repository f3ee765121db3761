"""Where things live, in one place: the checkout's shaders and weights, the one cache
folder, and (for offline code and tests only) the shared data folder.

The runtime reads only REPO, SHADERS, WEIGHTS and CACHE; SHARED_DATA is read by
training, evaluation, benchmarks and tests, never on the frame path.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHADERS = REPO / "shaders"
WEIGHTS = REPO / "weights"
#: Compiled engines, ONNX exports, the engine choice, training runs, benchmark clips.
CACHE = Path(os.environ.get("PRNET_LIVE_CACHE", Path.home() / ".cache" / "prnet-live"))
#: Data for tests, training, evaluation and benchmarks: ../shared/data beside the checkout.
SHARED_DATA = Path(os.environ.get("PRNET_LIVE_SHARED", REPO.parent / "shared" / "data"))
MEDIA = SHARED_DATA / "media"
