"""Where things live, in one place: the package's own shaders, weights and panel files
(found through importlib.resources, so a checkout, an editable install, a wheel and a
zipped install all work, from any folder), the one cache folder, and (for offline code
and tests only) the checkout and the shared data folder.

The runtime reads only SHADERS, WEIGHTS and CACHE; REPO and SHARED_DATA are read by
training, evaluation, benchmarks and tests, never on the frame path.
"""

from __future__ import annotations

import os
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGE: Traversable = files("realtime")
SHADERS: Traversable = PACKAGE / "render" / "shaders"
WEIGHTS: Traversable = PACKAGE / "weights"
#: Compiled engines, ONNX exports, the engine choice, training runs, benchmark clips.
CACHE = Path(os.environ.get("PRNET_LIVE_CACHE", Path.home() / ".cache" / "prnet-live"))
#: The checkout this package was imported from (offline code and tests only).
REPO = Path(__file__).resolve().parents[2]
#: Data for tests, training, evaluation and benchmarks: ../shared/data beside the checkout.
SHARED_DATA = Path(os.environ.get("PRNET_LIVE_SHARED", REPO.parent / "shared" / "data"))
MEDIA = SHARED_DATA / "media"
#: Shipped models by name (``--model``), in WEIGHTS. ``auto`` is the first of
#: realtime.core.weights.DEFAULT_BUNDLES present; the mobile model is not among them: it
#: would have to be within 0.2 points of the lite model's dev NME (see the model card).
MODELS = {"full": "prnet_full256.pt", "lite": "prnet_lite128.pt", "mobile": "prnet_mobile96.pt"}


def resource(path: str | os.PathLike | Traversable) -> Traversable:
    """A file to read, named by the user (a path) or shipped in the package (a
    resource): either way ``is_file()``, ``open("rb")``, ``read_bytes()`` and ``name``
    work, inside a zipped install too."""
    return path if isinstance(path, Traversable) else Path(path)
