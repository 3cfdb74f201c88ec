"""The record that ships with every trained artifact, and its check before use.

``manifest.json`` holds the sha256 of every file, the rule, the artifact's
settings and seed, the hashes of its inputs, the config hash, the commit, the
device, packages, time and final numbers; ``training.json`` the whole training
record with its history, and ``training_curves.png`` the history as a figure.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ipbench import provenance
from ipbench.io import atomic_write_json, atomic_write_text
from metrics.weights import WeightsError, sha256_file

MANIFEST = "manifest.json"
CURVES = "training_curves.png"


def _finite(value):
    """``value`` with NaN and infinities as None (JSON null): a measure that had nothing to compare is no number."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _input_hashes(inputs: dict[str, str]) -> dict:
    """sha256 of each input file; a folder is named by its manifest (a model) or listed file by file."""
    hashes = {}
    for role, value in inputs.items():
        path = Path(value)
        if path.is_file():
            hashes[role] = {"file": str(path), "sha256": sha256_file(path)}
        elif (path / MANIFEST).is_file():
            hashes[role] = {"file": str(path / MANIFEST), "sha256": sha256_file(path / MANIFEST)}
        elif path.is_dir():
            hashes[role] = {"folder": str(path), "files": {str(p.relative_to(path)): sha256_file(p)
                                                           for p in sorted(path.rglob("*")) if p.is_file()}}
    return hashes


def write_manifest(out_dir: Path, name: str, record: dict, *, inputs: dict[str, str], settings: dict,
                   config_sha256: str, seconds: float, repo: Path, subject: str | None = None,
                   rule: str = "train_artifact") -> dict:
    """Write training.json, the curves figure and, last, manifest.json (its presence means complete)."""
    from ipbench.training.curves import plot_history

    out_dir = Path(out_dir)
    record = _finite(json.loads(json.dumps(record, default=float)))
    atomic_write_text(out_dir / "training.json", json.dumps(record, indent=1, allow_nan=False) + "\n")
    plot_history(record.get("history", []), out_dir / CURVES, title=name + (f" ({subject})" if subject else ""))
    files = {str(p.relative_to(out_dir)): sha256_file(p) for p in sorted(out_dir.rglob("*"))
             if p.is_file() and p.name != MANIFEST}
    manifest = {
        "artifact": name,
        "subject": subject,
        "files": files,
        "rule": rule,
        "settings": settings,
        "seed": settings.get("seed"),
        "inputs": _input_hashes(inputs),
        "config_sha256": config_sha256,
        "git": provenance.git_state(repo),
        "device": provenance.device_info(),
        "packages": provenance.package_versions(),
        "train_seconds": round(seconds, 1),
        "training_result": {k: v for k, v in record.items() if k not in ("history", "validation")},
        "validation": record.get("validation", {}),
        "curves": CURVES,
    }
    atomic_write_json(out_dir / MANIFEST, _finite(manifest))
    return manifest


def retrain_hint(name: str) -> str:
    """How to replace a shipped artifact that fails its check."""
    return (f"retrain it with `snakemake --cores all --config retrain={name}` (on a GPU add device=cuda; models "
            "trained on it may need retraining too, e.g. retrain=vae,unet)")


def _sha256(path: Path, cache: dict | None) -> str:
    """sha256 of ``path``; with ``cache`` ({path: {size, mtime_ns, sha256}}) read again only when its size or
    mtime changed. A rewrite that keeps both (e.g. ``os.utime`` setting the old mtime back) goes unseen."""
    if cache is None:
        return sha256_file(path)
    stat = path.stat()
    entry = cache.get(str(path))
    if entry and (entry["size"], entry["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns):
        return entry["sha256"]
    digest = sha256_file(path)
    cache[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    return digest


def verify(folder: Path, retrain_hint: str, cache: dict | None = None) -> dict:
    """Check every file ``folder/manifest.json`` lists; an error names the file and how to fix it.

    ``cache`` (see :func:`_sha256`) spares re-reading files whose size and mtime are unchanged.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise WeightsError(f"{manifest_path}: missing; {retrain_hint}")
    manifest = json.loads(manifest_path.read_text())
    for name, expected in sorted(manifest["files"].items()):
        path = folder / name
        fix = f"restore it with `git checkout -- {path}`, or {retrain_hint}"
        if not path.is_file():
            raise WeightsError(f"{path}: missing checkpoint file listed in {manifest_path}; {fix}")
        actual = _sha256(path, cache)
        if actual != expected:
            raise WeightsError(f"{path}: sha256 {actual} does not match {expected} in {manifest_path}; {fix}")
    return manifest


HASH_CACHE = "sha256_cache.json"  # beside verified.json: {path: {size, mtime_ns, sha256}}


def write_verified(out: Path, folder: Path, artifact: str) -> dict:
    """Hash every file of a shipped artifact, then write ``out`` (verified.json) and the hash cache beside it."""
    cache: dict = {}
    manifest = verify(folder, retrain_hint(artifact), cache)
    atomic_write_json(out.with_name(HASH_CACHE), cache)
    atomic_write_json(out, {"folder": str(folder), "artifact": artifact, "files": manifest["files"],
                            "verified": True})
    return manifest


def recheck_verified(verified: Path) -> None:
    """Check the artifact a verified.json stands for again, as every job that loads it does.

    Files whose (path, size, mtime_ns) the hash cache holds are not read again, so the check is a stat
    per file unless something changed since; a changed file is hashed and must still match its manifest.
    """
    verified = Path(verified)
    record = json.loads(verified.read_text())
    cache_path = verified.with_name(HASH_CACHE)
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: everything is hashed once more
        cache = {}
    before = json.dumps(cache, sort_keys=True)
    try:
        verify(Path(record["folder"]), retrain_hint(record["artifact"]), cache)
    finally:
        if json.dumps(cache, sort_keys=True) != before:
            atomic_write_json(cache_path, cache)
