from __future__ import annotations

import pytest
import torch

from harness.models import Involution2d, RedNet


def naive_involution(module: Involution2d, x: torch.Tensor) -> torch.Tensor:
    """Loop over positions: out[c, i, j] = sum_kl W[g(c), k, l, i, j] x[c, s*i+k-p, s*j+l-p]."""
    k, s, g = module.kernel_size, module.stride, module.groups
    pad = (k - 1) // 2
    weight = module.span(module.reduce(module.pool(x)))
    batch, channels, height, width = x.shape
    out_h, out_w = weight.shape[-2:]
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    out = torch.zeros(batch, channels, out_h, out_w, dtype=x.dtype)
    per_group = channels // g
    for b in range(batch):
        for c in range(channels):
            group = c // per_group
            for i in range(out_h):
                for j in range(out_w):
                    patch = padded[b, c, i * s : i * s + k, j * s : j * s + k]
                    kernel = weight[b, group * k * k : (group + 1) * k * k, i, j].view(k, k)
                    out[b, c, i, j] = (patch * kernel).sum()
    return out


@pytest.mark.parametrize(
    ("channels", "kernel", "stride", "size"),
    [
        (16, 3, 1, 6),
        (32, 7, 1, 5),
        (32, 7, 2, 7),
        (32, 3, 2, 8),
    ],
)
def test_involution_matches_naive_loop(channels, kernel, stride, size):
    torch.manual_seed(0)
    module = Involution2d(channels, kernel_size=kernel, stride=stride).eval()
    x = torch.randn(2, channels, size, size)
    fast = module(x)
    expected_size = -(-size // stride)
    assert fast.shape == (2, channels, expected_size, expected_size)
    assert torch.allclose(fast, naive_involution(module, x), atol=1e-5)


def test_involution_kernel_generation_follows_the_paper():
    module = Involution2d(64, kernel_size=7, stride=2)
    assert module.groups == 4  # 16 channels per group
    assert module.reduce[0].out_channels == 16  # reduction r = 4
    assert module.span.out_channels == 7 * 7 * 4
    assert isinstance(module.pool, torch.nn.AvgPool2d)


def test_involution_gradients_reach_input_and_kernel_generator():
    module = Involution2d(16, kernel_size=3)
    x = torch.randn(2, 16, 5, 5, requires_grad=True)
    module(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert module.span.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("stride", [1, 2])
def test_involution_gradients_match_the_naive_loop(stride):
    torch.manual_seed(0)
    module = Involution2d(32, kernel_size=7, stride=stride).double()
    x = torch.randn(2, 32, 9, 9, dtype=torch.double, requires_grad=True)
    weights = torch.randn(2, 32, *module(x).shape[-2:], dtype=torch.double)
    inputs = [x, *module.parameters()]
    fast = torch.autograd.grad((module(x) * weights).sum(), inputs)
    naive = torch.autograd.grad((naive_involution(module, x) * weights).sum(), inputs)
    for got, expected in zip(fast, naive, strict=True):
        assert torch.allclose(got, expected, atol=1e-10)


def test_rednet_predicts_classes_for_small_images():
    model = RedNet(in_chans=1, num_classes=10, width=16, depth=1)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    kernels = [m.kernel_size for m in model.modules() if isinstance(m, Involution2d)]
    assert kernels[0] == 3 and set(kernels[1:]) == {7}


def test_involution_flops_are_counted_analytically():
    """FlopCounterMode sees only the kernel-generating convolutions of Involution2d(32, 7) on
    8x8 (32x8 and 8x98 1x1 convolutions: 2 x 64 x (256 + 784) = 133,120 FLOPs); the
    involution adds 2 x 32 channels x 64 pixels x 49 taps = 200,704: 333,824 in all."""
    from harness.models import forward_flops

    layer = Involution2d(32, kernel_size=7)
    assert forward_flops(layer, torch.randn(2, 32, 8, 8)) == 133_120 + 200_704
