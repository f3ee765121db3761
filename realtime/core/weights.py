"""Weights bundles: one file with everything needed to run a PRNet.

A bundle holds the state dict, the architecture, the UV layout the weights were
trained with, the input normalisation, provenance and a SHA-256 over all of it.
The config's ``arch`` names the network: "prnet" (``realtime.core.model.PRNet``; the
default when absent, as in every bundle made before the key) or "mobile"
(``realtime.core.mobile.MobilePRNet``, whose input side is smaller than its map's).
Weights never travel without their layout, because a map decoded with the wrong
landmark indices looks plausible and is silently wrong.

CLI: ``python -m realtime.core.weights info|verify PATH``; the official TF weights import
with ``python -m realtime.export.tf_import PRNET_CHECKOUT [-o OUT]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from realtime.core.mobile import MobileConfig, MobilePRNet
from realtime.core.model import FaceScoring, PRNet, PRNetConfig
from realtime.core.paths import MODELS, WEIGHTS, Traversable, resource
from realtime.core.types import UserError
from realtime.core.uv import UVLayout

FORMAT = "prnet-live-bundle/1"
#: Shipped bundles, best first: the pipeline loads the first that exists (``--model auto``).
DEFAULT_BUNDLES = ("prnet_full256.pt", "prnet_lite128.pt")
NORMALISATION = {"input": "RGB / 255", "output": "sigmoid * resolution * 1.1 = crop pixels"}


#: arch -> (config class, network class)
ARCHS: dict[str, tuple[type, type]] = {"prnet": (PRNetConfig, PRNet), "mobile": (MobileConfig, MobilePRNet)}
Config = PRNetConfig | MobileConfig


class BundleError(UserError, ValueError):
    """A bundle that cannot be used; the message is one line saying why and what to do."""


def config_from_dict(d: dict) -> Config:
    """A stored config dict -> its config: ``arch`` picks the class ("prnet" when absent)."""
    d = dict(d)
    arch = d.pop("arch", "prnet")
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    return ARCHS[arch][0](**d)


def build_net(config: Config) -> FaceScoring:
    """The untrained network of ``config`` (PRNet or MobilePRNet)."""
    return ARCHS[config.arch][1](config)


def describe(config: Config) -> str:
    if isinstance(config, PRNetConfig):
        return f"PRNet(size={config.size})"
    return f"MobilePRNet(resolution={config.resolution}, channels={list(config.channels)})"


@dataclass
class Bundle:
    """A loaded, validated bundle; ``state_dict`` is float32 whatever was stored."""

    config: Config
    state_dict: dict[str, torch.Tensor]
    layout: UVLayout
    provenance: dict = field(default_factory=dict)
    normalisation: dict = field(default_factory=lambda: dict(NORMALISATION))
    path: Path | Traversable | None = None
    sha256: str = ""  # the checksum over config, weights and layout, as stored and verified

    def build_model(self, device: str | torch.device = "cpu") -> FaceScoring:
        """The network (PRNet or MobilePRNet, by ``config.arch``), eval mode; its
        ``forward`` gives maps in (0, 1), times ``config.output_scale`` crop pixels."""
        model = build_net(self.config)
        model.load_state_dict(self.state_dict)
        return model.eval().to(device)


def _digest(config: dict, state: dict[str, torch.Tensor], layout: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for group in (state, layout):
        for k in sorted(group):
            h.update(k.encode())
            h.update(group[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_bundle(bundle: Bundle, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write ``bundle``; floating-point weights stored as ``dtype`` (fp16 halves the
    file and changes outputs by far less than the engines' 2e-3 tolerance)."""
    state = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in bundle.state_dict.items()
    }
    layout = {k: torch.as_tensor(np.asarray(v)).contiguous() for k, v in bundle.layout.to_arrays().items()}
    config = bundle.config.to_dict()
    payload = {
        "format": FORMAT,
        "config": config,
        "state_dict": state,
        "layout": layout,
        "normalisation": bundle.normalisation,
        "provenance": bundle.provenance,
        "sha256": _digest(config, state, layout),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def load_bundle(path: str | Path | Traversable | None = None) -> Bundle:
    """Load and validate a bundle (default: the best shipped one).

    Raises BundleError, with one line saying what is wrong and how to fix it, for a
    missing, truncated, corrupt, tampered, mismatched or non-finite bundle."""
    path = resource(path) if path is not None else default_bundle_path()
    hint = "re-download or re-export it, or pass another with --weights"
    if not path.is_file():
        raise BundleError(f"weights bundle {path} not found: {hint}")
    try:
        with path.open("rb") as f:
            payload = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged zip/pickle
        raise BundleError(
            f"weights bundle {path} is unreadable (truncated or corrupt: {type(e).__name__}): {hint}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BundleError(
            f"{path} is not a PRNet Live weights bundle (expected format "
            f"{FORMAT}); import official weights with "
            "'python -m realtime.export.tf_import'"
        )
    try:
        config = config_from_dict(payload["config"])
        state, layout_t = payload["state_dict"], payload["layout"]
        digest = _digest(payload["config"], state, layout_t)
    except Exception as e:
        raise BundleError(f"weights bundle {path} is incomplete ({e}): {hint}") from None
    if digest != payload.get("sha256"):
        raise BundleError(f"weights bundle {path} fails its checksum (modified or damaged): {hint}")
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise BundleError(f"weights bundle {path} has non-finite values in {k}: {hint}")
    layout = UVLayout.from_arrays({k: v.numpy() for k, v in layout_t.items()})
    if layout.resolution != config.layout_resolution:
        raise BundleError(
            f"weights bundle {path}: layout is {layout.resolution}px but the "
            f"network's map is {config.layout_resolution}px: {hint}"
        )
    expected = build_net(config).state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    bad = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or extra or bad:
        what = (missing or extra or bad)[0]
        raise BundleError(
            f"weights bundle {path} does not match {describe(config)}: "
            f"{len(missing)} missing, {len(extra)} unexpected, {len(bad)} mis-shaped "
            f"tensors (first: {what}): {hint}"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return Bundle(
        config,
        state,
        layout,
        payload.get("provenance", {}),
        payload.get("normalisation", dict(NORMALISATION)),
        path,
        digest,
    )


def default_bundle_path() -> Traversable:
    for name in DEFAULT_BUNDLES:
        if (WEIGHTS / name).is_file():
            return WEIGHTS / name
    return WEIGHTS / DEFAULT_BUNDLES[-1]


def model_bundle(name: str) -> Traversable:
    """A shipped model by name (``MODELS``), or the default for ``auto``; BundleError
    naming what is shipped for a name that is not."""
    if name == "auto":
        return default_bundle_path()
    shipped = [n for n, f in MODELS.items() if (WEIGHTS / f).is_file()]
    if name not in shipped:
        raise BundleError(f"--model {name}: not shipped in this version; choose auto or {', '.join(shipped)}")
    return WEIGHTS / MODELS[name]


def check_choice(weights: str | Path | None, model: str) -> None:
    """BundleError, one line, for a run's network choice that cannot be right whatever
    is installed: both ``weights`` and a ``model`` name, or a name that is no model
    (the CLI checks this before anything opens; ``resolve_bundle`` on every load)."""
    if weights and model != "auto":
        raise BundleError(f"--weights and --model {model} conflict: choose one network")
    if model != "auto" and model not in MODELS:
        raise BundleError(f"--model {model}: choose auto or one of {', '.join(MODELS)}")


def resolve_bundle(weights: str | Path | None = None, model: str = "auto") -> Bundle:
    """A run's bundle: ``weights`` (a path of the user's) or a shipped ``model`` by
    name (``check_choice``'s BundleError otherwise)."""
    check_choice(weights, model)
    return load_bundle(weights or model_bundle(model))


def _info(path: Path | Traversable) -> int:
    b = load_bundle(path)
    n = sum(v.numel() for v in b.state_dict.values())
    head = f" face_head={b.config.face_head}" if b.config.face_head else ""
    print(
        f"{b.path}: {describe(b.config)} resolution={b.config.resolution}{head} "
        f"params={n / 1e6:.2f}M face_pixels={int(b.layout.face_mask.sum())} checksum ok"
    )
    print(json.dumps(b.provenance, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m realtime.core.weights", description=__doc__)
    ap.add_argument("cmd", choices=("info", "verify"), help="check a bundle and print what it holds")
    ap.add_argument("path", type=Path, nargs="?", default=None)
    args = ap.parse_args(argv)
    try:
        return _info(args.path or default_bundle_path())
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
