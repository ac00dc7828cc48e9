"""The perceptual losses (losses.py), checked against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from stylecraft.losses import (
    STYLE_LOSSES,
    Moments,
    StyleTarget,
    content_loss,
    gram_matrix,
    relative_error,
    sqrtm,
    style_loss,
    total_variation,
)


def gram_target(features: torch.Tensor, kind: str = "gram") -> StyleTarget:
    return StyleTarget.of(Moments.of(features), kind)


def test_gram_matrix_by_hand():
    # Two channels at two positions: channel 0 = [1, 2], channel 1 = [3, 4].
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    # F F^T = [[1+4, 3+8], [3+8, 9+16]] = [[5, 11], [11, 25]], divided by H*W = 2 positions.
    expected = torch.tensor([[[2.5, 5.5], [5.5, 12.5]]])
    gram = gram_matrix(features)
    assert gram.shape == (1, 2, 2)
    assert torch.allclose(gram, expected)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_matrix_gradient_is_autograd_s_in_either_layout(layout):
    # gram_matrix's backward pass is written by hand (one product where autograd takes two); gradcheck compares
    # it with finite differences
    features = torch.rand(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (features,))
    if layout is torch.channels_last:  # the network's layout: its gradient comes back channels-last
        slopes: list[torch.Tensor] = []
        inner = features * 1
        inner.register_hook(slopes.append)
        (gram_matrix(inner) * torch.rand(2, 3, 3, dtype=torch.float64)).sum().backward()
        assert slopes[0].is_contiguous(memory_format=torch.channels_last)


def test_gram_matrix_per_batch_item():
    a = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])
    b = torch.tensor([[[0.0, 1.0]], [[2.0, 0.0]]])  # [[0+1, 0+0], [0, 4+0]] / 2
    gram = gram_matrix(torch.stack([a, b]))
    assert gram.shape == (2, 2, 2)
    assert torch.allclose(gram[0], torch.tensor([[2.5, 5.5], [5.5, 12.5]]))
    assert torch.allclose(gram[1], torch.tensor([[0.5, 0.0], [0.0, 2.0]]))


def test_gram_matrix_is_symmetric_and_positive():
    features = torch.randn(2, 5, 6, 7, generator=torch.Generator().manual_seed(0))
    gram = gram_matrix(features)
    assert gram.shape == (2, 5, 5)
    assert torch.allclose(gram, gram.transpose(1, 2))
    assert (torch.linalg.eigvalsh(gram) > -1e-5).all()
    # The diagonal is the mean square activation of each channel.
    assert torch.allclose(torch.diagonal(gram, dim1=1, dim2=2), features.pow(2).mean(dim=(2, 3)), atol=1e-5)


def test_gram_of_constant_channels_does_not_depend_on_size():
    values = torch.tensor([0.5, -2.0, 3.0])
    for height, width in [(1, 1), (4, 4), (7, 13), (32, 5)]:
        features = values.view(1, 3, 1, 1).expand(1, 3, height, width)
        # Every position contributes v v^T, and the Gram is their mean.
        assert torch.allclose(gram_matrix(features)[0], torch.outer(values, values))


def test_gram_of_tiled_texture_is_unchanged():
    texture = torch.rand(1, 4, 6, 5, generator=torch.Generator().manual_seed(1))
    tiled = texture.repeat(1, 1, 2, 2)  # the texture 2 x 2 times: each position appears four times
    assert tiled.shape == (1, 4, 12, 10)
    assert torch.allclose(gram_matrix(tiled), gram_matrix(texture), atol=1e-6)
    assert style_loss(tiled, gram_target(texture)) < 1e-10
    # A plain sum (no division by positions) would be four times larger: make sure that is not what we get.
    assert not torch.allclose(gram_matrix(tiled), 4 * gram_matrix(texture))


def test_relative_error_by_hand():
    # (0^2 + 2^2) / (1^2 + 0^2) = 4
    assert relative_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx(4.0)
    # (1^2 + 1^2) / (3^2 + 4^2) = 2 / 25
    value, target = torch.tensor([[2.0, 5.0]]), torch.tensor([[3.0, 4.0]])
    assert relative_error(value, target).item() == pytest.approx(0.08)
    assert relative_error(target, target).item() == 0.0


def test_relative_error_is_a_mean_over_the_batch():
    value = torch.tensor([[1.0], [0.0]])
    target = torch.tensor([[1.0], [2.0]])
    # (0 / 1 + 4 / 4) / 2: each item relative to its own target, so a batch weighs every photo alike.
    assert relative_error(value, target).item() == pytest.approx(0.5)


def test_relative_error_broadcasts_one_target_over_the_batch():
    value = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    target = torch.tensor([[3.0, 4.0]])
    assert relative_error(value, target).item() == pytest.approx(0.5)


def test_relative_error_zero_target_is_finite():
    zero = torch.zeros(3)
    assert relative_error(zero, zero).item() == 0.0
    assert torch.isfinite(relative_error(torch.ones(3), zero))


def test_content_loss_zero_for_equal_and_one_for_zero_input():
    target = torch.randn(1, 8, 5, 5, generator=torch.Generator().manual_seed(2))
    assert content_loss(target.clone(), target).item() == 0.0
    assert content_loss(torch.zeros_like(target), target).item() == pytest.approx(1.0)
    # Twice the target: ||2t - t||^2 / ||t||^2 = 1 as well; half of it: 1/4.
    assert content_loss(2 * target, target).item() == pytest.approx(1.0)
    assert content_loss(0.5 * target, target).item() == pytest.approx(0.25)


def test_style_loss_identical_features_is_zero():
    features = torch.randn(1, 6, 8, 8, generator=torch.Generator().manual_seed(3))
    assert style_loss(features, gram_target(features)).item() == pytest.approx(0.0, abs=1e-10)
    assert style_loss(torch.zeros_like(features), gram_target(features)).item() == pytest.approx(1.0)


def test_style_loss_by_hand():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    second = torch.tensor([[[2.5, 5.5], [5.5, 13.5]]])  # one entry off by 1 from the true Gram
    # 1^2 / (2.5^2 + 2 * 5.5^2 + 13.5^2) = 1 / 249
    assert style_loss(features, StyleTarget.of(Moments(torch.zeros(1, 2), second))).item() == pytest.approx(1 / 249)


def test_style_loss_ignores_spatial_arrangement():
    features = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(4))
    shuffled = features.flatten(2)[..., torch.randperm(36)].view(1, 4, 6, 6)
    assert style_loss(shuffled, gram_target(features)).item() == pytest.approx(0.0, abs=1e-10)
    assert content_loss(shuffled, features).item() > 0.5


def test_losses_are_scale_invariant():
    gen = torch.Generator().manual_seed(5)
    features, target = torch.randn(1, 4, 6, 6, generator=gen), torch.randn(1, 4, 6, 6, generator=gen)
    content = content_loss(features, target)
    style = style_loss(features, gram_target(target))
    assert content.item() > 0.1 and style.item() > 0.01
    assert content_loss(100 * features, 100 * target).item() == pytest.approx(content.item(), rel=1e-5)
    assert style_loss(100 * features, gram_target(100 * target)).item() == pytest.approx(style.item(), rel=1e-4)


def test_losses_do_not_depend_on_image_size():
    # The same texture on a small and a 3 x 3 larger canvas gives the same style loss against one target.
    gen = torch.Generator().manual_seed(6)
    texture, style = torch.rand(1, 3, 4, 4, generator=gen), torch.rand(1, 3, 4, 4, generator=gen)
    small = style_loss(texture, gram_target(style))
    large = style_loss(texture.repeat(1, 1, 3, 3), gram_target(style))
    assert small.item() > 1e-3
    assert large.item() == pytest.approx(small.item(), rel=1e-4)


def test_losses_give_gradients():
    gen = torch.Generator().manual_seed(7)
    features = torch.randn(1, 3, 4, 4, generator=gen, requires_grad=True)
    target = torch.randn(1, 3, 4, 4, generator=gen)
    (content_loss(features, target) + style_loss(features, gram_target(target))).backward()
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_mean_std_loss_by_hand():
    # channel 0: values 1, 3 (mean 2, std 1); channel 1: 0, 4 (mean 2, std 2)
    features = torch.tensor([[[[1.0, 3.0]], [[0.0, 4.0]]]])
    target = torch.tensor([[[[2.0, 2.0]], [[1.0, 5.0]]]])  # means 2, 3; stds 0, 2
    # (0^2 + 1^2 + 1^2 + 0^2) / (2^2 + 3^2 + 0^2 + 2^2) = 2 / 17
    assert style_loss(features, gram_target(target, "mean-std")).item() == pytest.approx(2 / 17, rel=1e-4)


def test_wasserstein_loss_of_one_channel_is_the_gaussians_distance():
    # W2^2 between N(2, 1) and N(3, 2^2) is (2 - 3)^2 + (1 - 2)^2, relative to 3^2 + 2^2
    features = torch.tensor([[[[1.0, 3.0]]]])
    target = torch.tensor([[[[1.0, 5.0]]]])
    assert style_loss(features, gram_target(target, "wasserstein")).item() == pytest.approx(2 / 13, rel=1e-3)


def test_wasserstein_sees_correlations_that_mean_std_does_not():
    # Same means and standard deviations per channel, opposite correlation between the channels.
    signal = torch.tensor([1.0, -1.0, 2.0, -2.0])
    together = torch.stack([signal, signal]).view(1, 2, 1, 4)
    apart = torch.stack([signal, -signal]).view(1, 2, 1, 4)
    assert style_loss(apart, gram_target(together, "mean-std")).item() == pytest.approx(0.0, abs=1e-6)
    assert style_loss(apart, gram_target(together, "wasserstein")).item() > 0.5
    # Uncorrelated channels: the Wasserstein distance is that of the means and standard deviations.
    other = torch.tensor([1.0, 1.0, -1.0, -1.0])
    uncorrelated = torch.stack([signal + 1, 3 * other]).view(1, 2, 1, 4)
    target = torch.stack([2 * signal, other - 2]).view(1, 2, 1, 4)
    assert style_loss(uncorrelated, gram_target(target, "wasserstein")).item() == pytest.approx(
        style_loss(uncorrelated, gram_target(target, "mean-std")).item(), rel=1e-3)


@pytest.mark.parametrize("kind", STYLE_LOSSES)
def test_every_style_loss_is_zero_for_the_style_one_for_nothing_and_blind_to_arrangement(kind: str):
    gen = torch.Generator().manual_seed(8)
    features = torch.rand(1, 6, 8, 8, generator=gen)
    features[:, 5] = 0  # a dead ReLU channel: a rank-deficient covariance
    target = gram_target(features, kind)
    shuffled = features.flatten(2)[..., torch.randperm(64, generator=gen)].view(1, 6, 8, 8)
    assert style_loss(shuffled, target).item() == pytest.approx(0.0, abs=1e-4)
    assert style_loss(torch.zeros_like(features), target).item() == pytest.approx(1.0, abs=0.02)
    other = torch.rand(1, 6, 8, 8, generator=gen).pow(3)
    found = style_loss(other, target)
    assert found.item() > 0.01
    assert style_loss(100 * other, gram_target(100 * features, kind)).item() == pytest.approx(found.item(), rel=1e-3)
    assert style_loss(other.repeat(1, 1, 2, 3), target).item() == pytest.approx(found.item(), rel=1e-3)
    pixels = other.clone().requires_grad_(True)
    style_loss(pixels, target).backward()
    assert pixels.grad is not None and bool(torch.isfinite(pixels.grad).all()) and pixels.grad.abs().sum() > 0


def test_a_non_finite_input_gives_a_non_finite_loss_not_an_error():
    target = gram_target(torch.rand(1, 3, 4, 4), "wasserstein")
    broken = torch.full((1, 3, 4, 4), float("inf"))
    assert not torch.isfinite(style_loss(broken, target))


def test_matrix_square_root_and_its_gradient():
    gen = torch.Generator().manual_seed(9)
    factor = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    matrix = factor @ factor.T + 0.1 * torch.eye(4, dtype=torch.float64)
    root = sqrtm(matrix)
    assert torch.allclose(root @ root, matrix, atol=1e-10) and torch.allclose(root, root.T)
    assert torch.autograd.gradcheck(lambda m: sqrtm((m + m.T) / 2), (matrix.clone().requires_grad_(True),))


def test_total_variation_2x2_by_hand():
    # [[0, 1],     horizontal differences: 1, 1 -> mean square 1
    #  [0, 1]]     vertical differences:   0, 0 -> mean square 0
    image = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert total_variation(image).item() == pytest.approx(1.0)
    # A checkerboard [[0, 1], [1, 0]]: horizontal 1, -1 and vertical 1, -1 -> 1 + 1.
    checker = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    assert total_variation(checker).item() == pytest.approx(2.0)


def test_total_variation_3x3_by_hand():
    # One bright pixel in the middle of a 3 x 3 black image.
    # Horizontal differences (3 rows x 2): row 1 is [1, -1], the rest 0 -> sum of squares 2 over 6 = 1/3.
    # Vertical differences (2 x 3 columns): column 1 is [1, -1], the rest 0 -> 2 over 6 = 1/3.
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 1, 1] = 1.0
    assert total_variation(image).item() == pytest.approx(2 / 3)
    # Half the contrast: every difference halves, every square quarters.
    assert total_variation(0.5 * image).item() == pytest.approx(1 / 6)


def test_total_variation_rgb_and_constant():
    assert total_variation(torch.full((1, 3, 5, 7), 0.3)).item() == 0.0
    # A vertical ramp with steps of 0.25 in every channel: no horizontal change, 0.25^2 vertically.
    ramp = torch.arange(5.0).mul(0.25).view(1, 1, 5, 1).expand(2, 3, 5, 4)
    assert total_variation(ramp).item() == pytest.approx(0.0625)


def test_total_variation_is_a_mean():
    # The same pattern on a larger canvas keeps (about) the same value, unlike a sum.
    small = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    large = small.repeat(1, 1, 8, 8)
    assert total_variation(large).item() == pytest.approx(total_variation(small).item())
