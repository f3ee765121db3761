"""A training run on disk: its folder, named from its architecture, what a checkpoint
holds, a later phase's starting weights (``--init``) and the export of a checkpoint as
a shippable weights bundle.

A checkpoint (``~/.cache/prnet-live/train/RUN/last.pt``, ``best.pt``) is a dict with
``model``, ``ema`` (the averaged weights, which are validated and shipped), ``opt``,
``state`` (step, history, best validation NME, the schedule), ``config``, ``layout``
and ``args`` (the flags): a rerun with the same ``--run`` resumes from ``last.pt``, so
this format outlives the code that wrote it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from realtime.core.mobile import MobileConfig
from realtime.core.model import PRNetConfig
from realtime.core.weights import Config, config_from_dict
from realtime.train.groundtruth import CACHE


def make_config(args: argparse.Namespace) -> Config:
    """The run's architecture from ``--arch``, ``--size``, ``--resolution``, ``--mobile``."""
    if args.arch == "mobile":
        extra = json.loads(args.mobile) if args.mobile else {}
        return MobileConfig(resolution=args.resolution or MobileConfig.resolution, **extra)
    return PRNetConfig(size=args.size, resolution=args.resolution or 128)


def run_dir(args: argparse.Namespace) -> Path:
    """``--run``'s folder, or one named from the config (prnet-s8-r128, mobile-r96)."""
    cfg = make_config(args)  # the defaults as the run uses them
    mobile = isinstance(cfg, MobileConfig)
    tag = f"mobile-r{cfg.resolution}" if mobile else f"prnet-s{cfg.size}-r{cfg.resolution}"
    return CACHE / "train" / (args.run or tag)


def save_checkpoint(path: Path, parts: dict) -> None:
    """Write ``parts`` (the keys above) beside ``path`` and then move it into place, so
    a run stopped mid-write keeps its previous checkpoint whole."""
    torch.save(parts, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def initial_weights(path: Path) -> tuple[Config, dict]:
    """A weights bundle's, or a training checkpoint's averaged weights (best.pt,
    last.pt), so that a later phase starts from a run without an export in between."""
    from realtime.core.weights import BundleError, load_bundle

    try:
        init = load_bundle(path)
        return init.config, init.state_dict
    except BundleError as e:
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
            return config_from_dict(ck["config"]), ck.get("ema", ck["model"])
        except Exception:
            raise SystemExit(f"error: --init: {e}") from None


def export_bundle(ckpt_path: Path, out_path: Path, extra: dict | None = None) -> Path:
    """Turn a training checkpoint into a shippable fp16 weights bundle."""
    from realtime.core.uv import UVLayout
    from realtime.core.weights import Bundle, save_bundle

    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    st = ck["state"]
    provenance = {
        "source": "trained by PRNet Live (python -m realtime.train)",
        "data": "AFLW crops with 3DDFA_V2 3DMM fits, BFM no-neck UV (non-commercial research use)",
        "args": {k: str(v) for k, v in ck["args"].items()},
        "step": st["step"],
        "val_nme": st["best"],
        **(extra or {}),
    }
    layout = UVLayout.from_arrays(ck["layout"])
    weights = ck.get("ema", ck["model"])  # best.pt's EMA has recalibrated batch norms
    bundle = Bundle(config_from_dict(ck["config"]), weights, layout, provenance)
    return save_bundle(bundle, out_path)


def blend_bundles(tuned: Path, base: Path, weight: float, out_path: Path) -> Path:
    """``weight`` x ``tuned``'s weights + (1 - weight) x ``base``'s, as a bundle with
    ``tuned``'s config (WiSE-FT, Wortsman et al. 2022): a fine-tune and the model it
    started from lie in one basin, so a point between them trades what the fine-tune
    gained against what it cost elsewhere, with no training. Both must share the
    architecture; a head only ``base`` has (e.g. the face head) stays behind."""
    from realtime.core.weights import Bundle, load_bundle, save_bundle

    a, b = load_bundle(tuned), load_bundle(base)
    if dataclasses.replace(b.config, face_head="") != dataclasses.replace(a.config, face_head=""):
        raise SystemExit(f"error: {tuned} is {a.config}, {base} is {b.config}: not one architecture")
    mixed = {
        k: (weight * v.float() + (1 - weight) * b.state_dict[k].float()).to(v.dtype)
        if v.is_floating_point() and k in b.state_dict
        else v
        for k, v in a.state_dict.items()
    }
    blend = {"tuned": str(tuned), "base": str(base), "weight": weight}
    return save_bundle(Bundle(a.config, mixed, a.layout, {**a.provenance, "blend": blend}), out_path)


def save_curve(history: list[dict], path: Path) -> None:
    """The training loss and the validation NME over epochs, as a picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    steps = [h["epoch"] for h in history if "loss" in h]
    ax[0].plot(steps, [h["loss"] for h in history if "loss" in h], lw=0.8)
    ax[0].set(xlabel="epoch", ylabel="weighted loss", yscale="log", title="training loss")
    val = [h for h in history if "val_nme" in h]
    ax[1].plot([h["epoch"] for h in val], [100 * h["val_nme"] for h in val], "o-")
    ax[1].set(xlabel="epoch", ylabel="NME %", title="validation 68-point NME")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
