"""Hashing helpers for weight files: every weight ipbench loads is checked first."""
from __future__ import annotations

import hashlib
import os


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
