"""Random directions in the low-frequency DCT subspace, drawn on the attack's device.

Decision-based attacks estimate the boundary normal from random probes; drawing them among the
low frequencies (the top-left block of each channel's 2-D DCT) makes each probe more informative
on natural images. A direction is the orthonormal inverse DCT of a coefficient block filled with
standard normal values, zeros elsewhere: ``D_hᵀ · Z · D_w`` with the first rows of the DCT
matrices, two small matrix products per batch.
"""

from __future__ import annotations

import math

import torch

from robustkit.checks import is_whole_number, shown
from robustkit.errors import InputError


def dct_matrix(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``D`` (``n×n``): ``D @ x`` transforms, ``D.T @ c`` inverts."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=dtype)


def auto_factor(height: int, width: int, min_side: int = 32, max_factor: int = 4) -> int:
    """Dimension-reduction factor for an image size: the largest ``f <= max_factor`` that keeps
    the subspace side ``min(H, W) / f`` at least ``min_side`` (1 for 32×32, 4 for 224×224)."""
    return int(max(1, min(max_factor, min(height, width) // min_side)))


def check_factor(factor: object, shape: tuple[int, ...]) -> None:
    """A one-line error where ``factor`` is no dimension-reduction factor for images shaped
    ``shape`` (``C×H×W``): not a whole number of at least 1, or larger than the images' sides.
    Attacks ask before they store or spend anything (their ``check_image_shape``), the
    sampler again when it is built."""
    if not is_whole_number(factor) or factor < 1:
        raise InputError(f"dim_reduction_factor must be a whole number >= 1, got {shown(factor)}")
    h, w = shape[-2:]
    if factor > max(h, w):
        raise InputError(
            f"dim_reduction_factor {factor} is larger than the images' {h}×{w}: use at most "
            f"{max(h, w)} (a subspace of one coefficient per channel)"
        )


class LowFrequencySampler:
    """Draws directions shaped ``C×H×W`` from the low-frequency block ``ceil(H/f)×ceil(W/f)``.

    ``factor=1`` is the whole image space (plain standard normal directions, drawn directly).
    """

    def __init__(self, shape: tuple[int, int, int], factor: int, device=None, dtype=torch.float32):
        check_factor(factor, shape)
        c, h, w = shape
        self.shape = (c, h, w)
        self.factor = int(factor)
        self.device = device
        self.dtype = dtype
        self.block = (math.ceil(h / factor), math.ceil(w / factor))
        self._dh_t = dct_matrix(h, device, dtype)[: self.block[0]].t().contiguous()  # H×h
        self._dw = dct_matrix(w, device, dtype)[: self.block[1]].contiguous()  # w×W

    @property
    def dim(self) -> int:
        """Dimension of the subspace."""
        return self.shape[0] * self.block[0] * self.block[1]

    def coefficients(self, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``m`` standard normal coefficient blocks, shaped ``[m, C, h, w]`` (the subspace's
        own coordinates; :meth:`directions` maps them to images)."""
        return torch.randn(
            (m, self.shape[0]) + self.block,
            generator=generator,
            device=self.device,
            dtype=self.dtype,
        )

    def directions(self, z: torch.Tensor) -> torch.Tensor:
        """The directions (``[m, C, H, W]``) of coefficient blocks ``z`` (``z`` itself for
        ``factor=1``)."""
        if self.factor == 1:
            return z
        return torch.matmul(torch.matmul(self._dh_t, z), self._dw)

    def sample(self, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``m`` random directions, shaped ``[m, C, H, W]``."""
        return self.directions(self.coefficients(m, generator))
