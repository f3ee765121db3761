"""Training: a step lowers the loss on a fixed batch; checkpoints resume."""

import numpy as np
import torch

from realtime.groundtruth import Batcher, MapMaker, TrainSet
from realtime.model import PRNet, PRNetConfig
from realtime.train import weighted_loss


def test_training_steps_lower_the_loss(bfm, shared):
    import zipfile

    import cv2

    with np.load(shared / "train" / "aflw_teacher_params.npz") as f:
        names, params, pts = f["names"][:8], f["params"][:8], f["pts68"][:8]
    with zipfile.ZipFile(shared / "train" / "aflw_crops_120.zip") as z:
        imgs = np.stack(
            [cv2.imdecode(np.frombuffer(z.read(f"images/{n}"), np.uint8), 1)[..., ::-1] for n in names]
        )
    maker = MapMaker(bfm, 64)
    x, y = Batcher(TrainSet(imgs, params, pts, names), maker, augment=False).batch(
        np.arange(8), np.random.default_rng(0)
    )
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
