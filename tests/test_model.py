"""The network is the paper's: layer counts, no biases, TF-SAME shapes, FLOPs."""

import torch
from torch import nn

from realtime.core.model import PRNet, PRNetConfig, count_flops


def test_architecture_matches_the_original():
    model = PRNet(PRNetConfig(size=16, resolution=256))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    deconvs = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(model.encoder) == 10 and len(deconvs) == 17
    # first conv + 3 per block + 5 strided shortcuts
    assert len(convs) == 1 + 30 + 5
    assert all(m.bias is None for m in convs + deconvs)
    assert all(m.affine and m.eps == 1e-3 for m in bns)
    assert [m.out_channels for m in deconvs] == [
        512,
        256,
        256,
        256,
        128,
        128,
        128,
        64,
        64,
        64,
        32,
        32,
        16,
        16,
        3,
        3,
        3,
    ]
    assert abs(count_flops(model, 256) / 1e9 - 8.26) < 0.05
    assert abs(count_flops(PRNet(PRNetConfig(8, 256)), 256) / count_flops(model, 256) - 0.26) < 0.02


def test_output_shape_and_range():
    model = PRNet(PRNetConfig(size=8, resolution=128)).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, 128, 128))
    assert y.shape == (2, 3, 128, 128)
    assert 0 < y.min() and y.max() < 1


def test_same_padding_places_a_single_pixel_like_tensorflow():
    # A stride-1 4x4 'SAME' conv in TF pads 1 before and 2 after: an impulse at (0, 0)
    # through an all-ones kernel lights up rows/cols 0..1 (kernel taps 1..2 cover it).
    from realtime.core.model import ConvBN

    conv = ConvBN(1, 1, 4, 1, norm=False)
    nn.init.ones_(conv.conv.weight)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 0, 0] = 1
    y = conv(x)[0, 0]
    assert y.shape == (8, 8)
    assert y[:2, :2].eq(1).all() and y.sum() == 4
