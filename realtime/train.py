"""Train PRNet per the paper's recipe: ``python -m realtime.train``.

Weighted MSE on the position map (16 : 4 : 3 : 0), Adam, the learning rate halved
every few epochs, batch 16, the paper's augmentation. Checkpoints go to a cache
folder outside the work tree every few minutes and a rerun with the same ``--run``
resumes from the last one, because good accuracy on a CPU takes hours and a session
may end in the middle.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from realtime.groundtruth import CACHE, DEFAULT_DATA, Batcher, MapMaker, load_trainset
from realtime.model import PRNet, PRNetConfig
from realtime.uv import load_bfm


def weighted_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of weight * squared error summed over x, y, z (map units)."""
    return ((pred - target).pow(2).sum(1) * weight).mean()


def landmark_nme(pred_maps: torch.Tensor, gt_maps: torch.Tensor, kpt_ind: np.ndarray) -> np.ndarray:
    """Per-image 68-point 2D NME, normalised by sqrt(w*h) of the true landmarks' box."""
    p = pred_maps[:, :2, kpt_ind[1], kpt_ind[0]]
    g = gt_maps[:, :2, kpt_ind[1], kpt_ind[0]]
    size = torch.sqrt((g[:, 0].amax(1) - g[:, 0].amin(1)) * (g[:, 1].amax(1) - g[:, 1].amin(1)))
    return ((p - g).norm(dim=1).mean(1) / size).numpy()


def recalibrate_bn(
    net: torch.nn.Module,
    batcher: Batcher,
    idx: np.ndarray,
    device: torch.device,
    batches: int = 40,
    batch: int = 32,
) -> None:
    """Re-estimate batch-norm statistics as a plain average over augmented batches.

    The running statistics kept during training follow the last ~10 batches, and that
    noise alone moved validation NME by about a point in a probe; an even average over
    a fixed set of batches removes it (and is required after weight averaging)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for i in range(batches):
            sel = idx[(i * batch) % len(idx) :][:batch]
            x, _ = batcher.batch(sel, np.random.default_rng([7, i]))
            net(x.to(device).contiguous(memory_format=torch.channels_last))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    net.eval()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m realtime.train", description=__doc__)
    ap.add_argument("--size", type=int, default=8, help="base width: 8 lite, 16 full")
    ap.add_argument("--resolution", type=int, default=128, help="input/map side (128 or 256)")
    ap.add_argument("--epochs", type=float, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4, help="starting learning rate")
    ap.add_argument("--halve-every", type=float, default=5, help="epochs per lr halving")
    ap.add_argument("--val", type=int, default=500, help="crops held out for validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", default=None, help="run name (checkpoint folder); resumes")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    ap.add_argument("--ema", type=float, default=0.999, help="weight averaging decay (0: off)")
    return ap.parse_args(argv)


def run_dir(args: argparse.Namespace) -> Path:
    name = args.run or f"prnet-s{args.size}-r{args.resolution}"
    return CACHE / "train" / name


def save_curve(history: list[dict], path: Path) -> None:
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = run_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    cfg = PRNetConfig(size=args.size, resolution=args.resolution)
    print(f"training PRNet size={cfg.size} at {cfg.resolution}px on {device}; checkpoints in {out}")

    data = load_trainset(args.data)
    maker = MapMaker(load_bfm(args.data / "bfm" / "bfm_noneck_uv.npz"), cfg.resolution)
    order = np.random.default_rng(12345).permutation(len(data.images))
    val_idx, train_idx = order[: args.val], order[args.val :]
    train_b, val_b = Batcher(data, maker, augment=True), Batcher(data, maker, augment=False)
    weight = torch.from_numpy(maker.layout.weight_mask).to(device)
    scale = cfg.output_scale

    model = PRNet(cfg).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    state = {"step": 0, "history": [], "best": math.inf}
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        print(f"resumed from {last} at step {state['step']}")
    # Validated and shipped weights are an exponential moving average of the trained
    # ones: Adam's step noise averaged out, which costs nothing per step.
    ema = copy.deepcopy(model).eval()
    if last.exists() and "ema" in ck:
        ema.load_state_dict(ck["ema"])

    steps_per_epoch = len(train_idx) // args.batch
    total = int(args.epochs * steps_per_epoch)
    amp = torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16)
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")

    def save(path: Path) -> None:
        ck = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "opt": opt.state_dict(),
            "state": state,
            "config": cfg.to_dict(),
            "layout": maker.layout.to_arrays(),
            "args": vars(args),
        }
        torch.save(ck, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)

    def validate() -> float:
        recalibrate_bn(ema, train_b, train_idx, device)
        nmes = []
        with torch.no_grad(), amp:
            for i in range(0, len(val_idx), 64):
                x, y = val_b.batch(val_idx[i : i + 64], np.random.default_rng(0))
                p = ema(x.to(device).contiguous(memory_format=torch.channels_last)).float()
                nmes.append(landmark_nme(p.cpu() * scale, y, maker.layout.kpt_ind))
        return float(np.concatenate(nmes).mean())

    t0 = time.time()
    last_ck = time.time()
    loss_acc, n_acc, seen = 0.0, 0, 0
    model.train()
    while state["step"] < total:
        step = state["step"]
        epoch = step / steps_per_epoch
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 ** math.floor(epoch / args.halve_every)
        rng = np.random.default_rng([args.seed, step])
        ep_order = np.random.default_rng([args.seed, int(epoch)]).permutation(train_idx)
        j = (step % steps_per_epoch) * args.batch
        x, y = train_b.batch(ep_order[j : j + args.batch], rng)
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        y = y.to(device) / scale
        with amp:
            pred = model(x)
        loss = weighted_loss(pred.float(), y, weight)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if args.ema:
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                    pe.lerp_(pm, 1.0 - args.ema)
        state["step"] += 1
        loss_acc += float(loss.detach())
        n_acc += 1
        seen += len(x)
        if state["step"] % 50 == 0:
            rate = seen / (time.time() - t0)
            eta = (total - state["step"]) * args.batch / max(rate, 1e-6) / 60
            state["history"].append({"epoch": state["step"] / steps_per_epoch, "loss": loss_acc / n_acc})
            print(
                f"epoch {epoch:6.2f}  step {state['step']}/{total}  loss {loss_acc / n_acc:.5f}  "
                f"lr {opt.param_groups[0]['lr']:.1e}  {rate:.1f} img/s  eta {eta:.0f} min",
                flush=True,
            )
            loss_acc, n_acc = 0.0, 0
        end_of_epoch = state["step"] % steps_per_epoch == 0
        timed_out = args.max_minutes and (time.time() - t0) / 60 > args.max_minutes
        if end_of_epoch or time.time() - last_ck > args.ckpt_minutes * 60 or timed_out:
            if end_of_epoch:
                nme = validate()
                state["history"].append({"epoch": state["step"] / steps_per_epoch, "val_nme": nme})
                print(
                    f"validation NME {100 * nme:.2f}% at epoch {state['step'] / steps_per_epoch:.2f}",
                    flush=True,
                )
                if nme < state["best"]:
                    state["best"] = nme
                    save(out / "best.pt")
                save_curve(state["history"], out / "loss_curve.png")
                (out / "history.json").write_text(json.dumps(state["history"]))
            save(last)
            last_ck = time.time()
            if timed_out:
                print("time limit reached; checkpoint saved, rerun to resume")
                return 0
    save(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def export_bundle(ckpt_path: Path, out_path: Path, extra: dict | None = None) -> Path:
    """Turn a training checkpoint into a shippable fp16 weights bundle."""
    from realtime.uv import UVLayout
    from realtime.weights import Bundle, save_bundle

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
    bundle = Bundle(PRNetConfig(**ck["config"]), weights, layout, provenance)
    return save_bundle(bundle, out_path)
