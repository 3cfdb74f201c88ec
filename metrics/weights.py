"""Hashing helpers for weight files: every weight ipbench loads is checked first."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


class WeightsError(RuntimeError):
    """A weight file that is missing, corrupt or not the one expected."""


def _hash_file(path: str | os.PathLike, algo: str) -> str:
    digest = hashlib.new(algo)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha1_file(path: str | os.PathLike) -> str:
    return _hash_file(path, "sha1")


def sha256_file(path: str | os.PathLike) -> str:
    return _hash_file(path, "sha256")


def verify_hash(path: str | os.PathLike, expected: str, algo: str = "sha256") -> None:
    """Raise WeightsError unless ``path`` hashes to ``expected``."""
    try:
        actual = _hash_file(path, algo)
    except FileNotFoundError:
        raise WeightsError(f"{path}: weight file not found") from None
    if actual != expected.lower():
        raise WeightsError(f"{path}: {algo} mismatch, expected {expected}, got {actual}")


def check_architecture(folder: str | os.PathLike, expected: str) -> None:
    """Raise WeightsError unless a local model folder's config.json names class ``expected``.

    diffusers records ``_class_name``, transformers ``architectures``. Loading another model's folder
    fails deep in the library (or, for transformers, leaves the missing weights random), never naming it.
    """
    config = Path(folder) / "config.json"
    if not config.is_file():
        return  # a Hub id, or a format without config.json: the library's own checks apply
    try:
        record = json.loads(config.read_text())
    except ValueError as err:
        raise WeightsError(f"{config}: not valid JSON ({err})") from None
    found = [record["_class_name"]] if "_class_name" in record else list(record.get("architectures") or [])
    if found and expected not in found:
        raise WeightsError(f"{folder}: holds a {'/'.join(found)} checkpoint (its config.json), not the {expected} "
                           "loaded here; point this source at a folder of the right model")
