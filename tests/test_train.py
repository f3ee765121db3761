"""Training: a step lowers the loss on a fixed batch; data-loader workers and resumed
runs see the same batches; yaw balancing evens out the pose bins; a later phase starts
from a bundle or from a run's checkpoint."""

import numpy as np
import pytest
import torch
from conftest import train_crops
from torch.utils.data import DataLoader

from realtime.core.model import PRNet, PRNetConfig
from realtime.core.weights import default_bundle_path, load_bundle
from realtime.train.batches import StepBatches, yaw_balanced
from realtime.train.checkpoint import initial_weights
from realtime.train.groundtruth import Batcher, MapMaker
from realtime.train.trainer import weighted_loss


def test_training_steps_lower_the_loss(bfm, shared):
    maker = MapMaker(bfm, 64)
    x, y = Batcher(train_crops(shared, 8), maker, augment=False).batch(np.arange(8), np.random.default_rng(0))
    torch.manual_seed(0)
    cfg = PRNetConfig(size=8, resolution=64)
    model = PRNet(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    w = torch.from_numpy(maker.layout.weight_mask)
    target = y / cfg.output_scale
    losses = []
    for _ in range(6):
        loss = weighted_loss(model(x), target, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0], losses


def test_workers_and_resumed_runs_see_the_same_batches(bfm, shared):
    batcher = Batcher(train_crops(shared, 24), MapMaker(bfm, 64), augment=True)
    idx = np.arange(24)

    def steps(start: int, workers: int) -> list:
        ds = StepBatches(batcher, idx, seed=3, batch=4, start=start, stop=9)
        return list(DataLoader(ds, batch_size=None, num_workers=workers))

    inline, pooled, resumed = steps(0, 0), steps(0, 2), steps(5, 0)
    assert len(inline) == len(pooled) == 9 and len(resumed) == 4
    for (im1, af1, sel1), (im2, af2, sel2) in zip(inline, pooled, strict=True):
        assert torch.equal(sel1, sel2) and torch.equal(af1, af2) and torch.equal(im1, im2)
    for (im1, _, sel1), (im2, _, sel2) in zip(inline[5:], resumed, strict=True):
        assert torch.equal(sel1, sel2) and torch.equal(im1, im2)
    # two epochs of 6 steps: each epoch is a new permutation of all 24 crops
    assert sorted(torch.cat([s for _, _, s in inline[:6]]).tolist()) == list(range(24))
    assert not torch.equal(inline[0][2], inline[6][2])


def test_yaw_balancing_samples_each_pose_bin_equally():
    yaw = np.array([5.0] * 60 + [-45.0] * 30 + [75.0] * 8 + [-100.0] * 2)
    p = yaw_balanced(yaw)
    bins = np.digitize(np.abs(yaw), (30.0, 60.0))
    np.testing.assert_allclose([p[bins == b].sum() for b in range(3)], [1 / 3] * 3)
    draws = np.random.default_rng(0).choice(len(yaw), 30000, p=p)
    assert abs(np.mean(bins[draws] == 2) - 1 / 3) < 0.02


def test_a_later_phase_starts_from_a_bundle_or_a_checkpoint(tmp_path):
    """--init takes the shipped bundle as is, and a run's checkpoint by its averaged
    (EMA) weights, the ones validated and exported; anything else is one clear line."""
    shipped = load_bundle(None)
    cfg, weights = initial_weights(default_bundle_path())
    assert cfg == shipped.config and torch.equal(
        weights["conv.conv.weight"], shipped.state_dict["conv.conv.weight"]
    )
    net = PRNet(cfg)
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    ckpt = tmp_path / "best.pt"
    torch.save({"model": net.state_dict(), "ema": ema, "config": cfg.to_dict()}, ckpt)
    cfg2, weights2 = initial_weights(ckpt)
    assert cfg2 == cfg and all(torch.equal(weights2[k], ema[k]) for k in ema)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not weights")
    with pytest.raises(SystemExit, match="--init"):
        initial_weights(junk)


def test_a_blend_lies_between_a_fine_tune_and_its_base_and_refuses_other_architectures(tmp_path):
    """blend_bundles (the model card's stage-9 trade-off): each weight is the given mix of
    the two bundles' weights, the tuned one's config and layout kept; a mobile base is
    refused in one line."""
    from realtime.core.weights import Bundle, model_bundle, save_bundle
    from realtime.train.checkpoint import blend_bundles

    tuned = load_bundle(None)
    shifted = {k: v + 1 if v.is_floating_point() else v for k, v in tuned.state_dict.items()}
    base = save_bundle(Bundle(tuned.config, shifted, tuned.layout, {}), tmp_path / "base.pt")
    mixed = load_bundle(blend_bundles(default_bundle_path(), base, 0.75, tmp_path / "mixed.pt"))
    k = "conv.conv.weight"  # bundles store fp16: equal to its rounding
    want = 0.75 * tuned.state_dict[k] + 0.25 * load_bundle(base).state_dict[k]
    assert mixed.config == tuned.config
    assert torch.allclose(mixed.state_dict[k], want, atol=2e-3)
    assert torch.allclose(mixed.state_dict[k] - tuned.state_dict[k], torch.tensor(0.25), atol=2e-3)
    assert mixed.provenance["blend"]["weight"] == 0.75
    with pytest.raises(SystemExit, match="not one architecture"):
        blend_bundles(default_bundle_path(), model_bundle("mobile"), 0.5, tmp_path / "bad.pt")
