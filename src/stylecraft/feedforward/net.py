"""The image transformation network of Johnson, Alahi & Fei-Fei (2016), with the fixes its successors adopted.

Three convolutions (9x9 stride 1, 3x3 stride 2, 3x3 stride 2), five residual blocks, two upsampling stages
and a final 9x9 convolution. The choices beside the paper's, and why:

* instance normalisation instead of batch normalisation (Ulyanov et al. 2016): the style of one picture
  should not depend on the others in its batch, and it visibly improves quality;
* reflection padding instead of zero padding: no dark frame at the borders;
* nearest-neighbour upsampling followed by a convolution instead of a transposed convolution (Odena et al.
  2016): no checkerboard artefacts;
* the output squashed into [0, 1] by ``(tanh(x) + 1) / 2``, a scaled tanh as in the paper, so the network
  never produces invalid pixels. A tanh has a trap: where its input runs far past +-3 its gradient
  vanishes, and a region that saturated there early in training can never be pulled back. Measured on a
  3,000-step candy model, the dark blots had pre-tanh values down to -73 (median -5) while 98% of pixels
  stayed within +-3; so training penalises pre-tanh values beyond +-:data:`SATURATION` (see ``train``).

``width`` sets the channels of the first stage (32 in the paper; the others double it at each stride);
:data:`WIDTHS` names the paper's network and a compact one for CPUs.

One network can paint several styles (Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic
Style"): with ``styles`` > 1 every normalisation is a :class:`StyleNorm`, whose scale and shift are one row
per style of a table, while the convolutions are shared. Styles blend by mixing their rows
(:meth:`TransformerNet.select`), and :meth:`TransformerNet.painting` gives a one-style network with the mixed
rows as its normalisations' own scale and shift, so applying, exact tiles and export never see the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .settings import WIDTHS

#: Pre-tanh magnitude beyond which training pushes back: tanh(2.5) covers 99.3% of the output range.
SATURATION = 2.5
#: Standard deviations beyond which an instance-normalised activation counts as a spike (see spike_penalty).
SPIKE = 4.0


class StyleNorm(nn.Module):
    """Conditional instance normalisation: a scale and a shift per style (rows of ``scales`` and ``shifts``),
    applied as the mix of rows that ``mix`` (one weight per style, summing to 1) selects."""

    def __init__(self, channels: int, styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.scales = nn.Parameter(torch.ones(styles, channels))
        self.shifts = nn.Parameter(torch.zeros(styles, channels))
        self.mix: torch.Tensor
        self.register_buffer("mix", F.one_hot(torch.tensor(0), styles).float(), persistent=False)

    def mixed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The scale and shift of the current mix: (C,) each."""
        return self.mix @ self.scales, self.mix @ self.shifts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mixed()
        return F.instance_norm(x, weight=scale, bias=shift, eps=self.eps)


class _ConvLayer(nn.Sequential):
    """Reflection pad, convolve, optionally instance-normalise (per style when ``styles`` > 1) and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True,
                 relu: bool = True, styles: int = 1) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(cout, affine=True) if styles == 1 else StyleNorm(cout, styles))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Residual(nn.Module):
    """Two 3x3 convolutions with instance norm and a skip connection (no ReLU after the sum, as in the paper's
    supplementary material)."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_ConvLayer(channels, channels, 3, styles=styles),
                                  _ConvLayer(channels, channels, 3, relu=False, styles=styles))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual: torch.Tensor = self.body(x)
        return x + residual


class _Upsample(nn.Sequential):
    """Nearest-neighbour x2, then a convolution: upsampling without checkerboard artefacts."""

    def __init__(self, cin: int, cout: int, styles: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), _ConvLayer(cin, cout, 3, styles=styles))


class TransformerNet(nn.Module):
    """Image in, stylised image out: (N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], H and W multiples of 4.

    With ``styles`` > 1 it paints the mix of styles last :meth:`select`-ed (the first style by default)."""

    def __init__(self, width: int = WIDTHS["full"], residual_blocks: int = 5, styles: int = 1) -> None:
        super().__init__()
        if width < 1 or residual_blocks < 0 or styles < 1:
            raise ValueError("width and styles must be >= 1 and residual_blocks >= 0")
        self.width = width
        self.residual_blocks = residual_blocks
        self.styles = styles
        w1, w2, w3 = width, 2 * width, 4 * width
        self.body = nn.Sequential(
            _ConvLayer(3, w1, 9, styles=styles), _ConvLayer(w1, w2, 3, stride=2, styles=styles),
            _ConvLayer(w2, w3, 3, stride=2, styles=styles),
            *[_Residual(w3, styles) for _ in range(residual_blocks)],
            _Upsample(w3, w2, styles), _Upsample(w2, w1, styles),
            _ConvLayer(w1, 3, 9, norm=False, relu=False),
        )

    def _weights(self, mix: Sequence[float]) -> torch.Tensor:
        """``mix`` as a tensor summing to 1; a ValueError unless it has one finite weight >= 0 per style."""
        weights = torch.tensor(mix, dtype=torch.float32)
        if weights.shape != (self.styles,) or not torch.isfinite(weights).all() or (weights < 0).any() \
                or weights.sum() <= 0:
            raise ValueError(f"a mix needs {self.styles} weights >= 0, not all 0 (got {list(mix)})")
        return weights / weights.sum()

    def select(self, mix: Sequence[float]) -> None:
        """Paint the mix of styles ``mix`` from now on: one weight per style, >= 0 (normalised to sum 1)."""
        weights = self._weights(mix)
        for norm in self.modules():
            if isinstance(norm, StyleNorm):
                norm.mix = weights.to(norm.scales.device)

    def painting(self, mix: Sequence[float]) -> TransformerNet:
        """A one-style network painting the mix of styles ``mix``: the shared convolutions, and the mixed scale
        and shift as each normalisation's own (this network's selection is left as it was)."""
        single = TransformerNet(self.width, self.residual_blocks).to(next(self.parameters()).device)
        state = {k: v for k, v in self.state_dict().items() if not k.endswith((".scales", ".shifts"))}
        weights = self._weights(mix)
        for name, norm in self.named_modules():
            if isinstance(norm, StyleNorm):
                state[f"{name}.weight"] = weights.to(norm.scales.device) @ norm.scales.detach()
                state[f"{name}.bias"] = weights.to(norm.scales.device) @ norm.shifts.detach()
        single.load_state_dict(state)
        return single.eval().requires_grad_(False)

    def forward(self, image: torch.Tensor, with_logits: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The stylised image; with ``with_logits`` also the values before the tanh (for the penalty)."""
        logits = self.body(image * 2 - 1)
        output = picture(logits)
        return (output, logits) if with_logits else output


def picture(logits: torch.Tensor) -> torch.Tensor:
    """The network's output in [0, 1] from the body's values before the tanh."""
    return (torch.tanh(logits) + 1) / 2


def saturation_penalty(logits: torch.Tensor) -> torch.Tensor:
    """Mean squared excess of pre-tanh values beyond +-SATURATION: 0 for a network that stays in range."""
    return torch.relu(logits.abs() - SATURATION).pow(2).mean()


def spike_penalty(features: torch.Tensor) -> torch.Tensor:
    """Mean squared excess of ``features`` (a normalisation's input), instance-normalised, beyond +-SPIKE.

    An instance-normalised network learns to make a strong local spike in most channels at one place, which
    dominates each channel's statistics and so lets it scale the rest of the picture as the normalisation
    would not (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", call them
    droplets). The spike comes out as a blot of one colour, in the dark or flat areas where the content loss
    costs least; the blot moves and changes colour as training goes on, but stays. Penalising the spikes takes
    the mechanism away."""
    normalised = F.instance_norm(features.float())
    return torch.relu(normalised.abs() - SPIKE).pow(2).mean()
