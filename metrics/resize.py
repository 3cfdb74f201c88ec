"""clean-fid's resize (PIL ``F`` mode, bicubic, no re-quantisation) as two matrix products, for GPUs.

PIL resamples separably: one pass along one axis, its result stored as float32, then one along the
other, each output pixel a weighted sum of input pixels accumulated in double and stored as float32.
Which axis goes first depends on the shapes (Pillow picks the cheaper order), so it is read off PIL
itself once per shape (:func:`vertical_first`): the rounding between the passes differs. The weights
of one pass depend only on the input and output lengths, so a pass is a product with a fixed
(out, in) matrix. :func:`bicubic_weights` builds that matrix the way PIL's ``precompute_coeffs``
defines it (a Keys a=-0.5 cubic whose support widens by the downscale factor, sampled at pixel
centres, each row normalised to sum 1); tests/test_resize.py checks it against PIL's impulse responses
and the resized images against clean-fid's, to float32 rounding. The products run in float64, as
PIL accumulates, so on a GPU the resize is exact and costs far less than the Inception forward.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

SUPPORT = 2.0  # the bicubic kernel's support, in input pixels at scale 1


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, PIL's BICUBIC."""
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@lru_cache(maxsize=32)
def bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float64 matrix of one PIL bicubic pass over the whole input length."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)  # downscaling widens the kernel (antialiasing); upscaling does not
    support = SUPPORT * filter_scale
    weights = np.zeros((out_size, in_size))
    for out in range(out_size):
        center = (out + 0.5) * scale
        # PIL rounds the window ends by truncating (x + 0.5) and clips them to the input.
        first = max(int(center - support + 0.5), 0)
        last = min(int(center + support + 0.5), in_size)
        taps = _cubic((np.arange(first, last) - center + 0.5) * (1.0 / filter_scale))
        total = np.cumsum(taps)[-1]  # summed in order, as PIL does
        weights[out, first:last] = taps / total if total != 0.0 else taps
    return weights


@lru_cache(maxsize=256)
def vertical_first(height: int, width: int, size: int) -> bool:
    """Whether PIL resizes an ``height`` x ``width`` F image to ``size`` x ``size`` vertically first.

    Found by resizing one seeded random image both ways and comparing with PIL's own result.
    """
    from PIL import Image

    probe = np.random.default_rng(height * 7919 + width).uniform(0, 255, (height, width)).astype(np.float32)
    expected = np.asarray(Image.fromarray(probe, mode="F").resize((size, size), Image.BICUBIC))
    pixels = torch.from_numpy(probe).double()[None, None]
    return bool(np.array_equal(_resize(pixels, size, vertical_first=True)[0, 0].numpy(), expected))


def _matrix(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(bicubic_weights(in_size, out_size)).to(device)


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) on any device -> float32 (N, 3, size, size), clean-fid's ``PIL`` bicubic resize.

    The same values as ``cleanfid.resize.make_resizer("PIL", False, "bicubic", (size, size))`` per image:
    float32 after each pass, clipped to [0, 255] at the end as clean-fid clips.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} {tuple(images.shape)}")
    _, height, width, _ = images.shape
    pixels = images.permute(0, 3, 1, 2).double()  # N, 3, H, W
    both = width != size and height != size
    return _resize(pixels, size, both and vertical_first(height, width, size)).clamp_(0.0, 255.0)


def _resize(pixels: torch.Tensor, size: int, vertical_first: bool) -> torch.Tensor:
    """float64 (..., H, W) -> float32 (..., size, size), rounded to float32 after each pass as PIL stores it."""
    height, width = pixels.shape[-2:]

    def horizontal(x):
        return x if width == size else (x @ _matrix(width, size, x.device).T).float().double()

    def vertical(x):
        return x if height == size else (_matrix(height, size, x.device) @ x).float().double()

    return (horizontal(vertical(pixels)) if vertical_first else vertical(horizontal(pixels))).float()
