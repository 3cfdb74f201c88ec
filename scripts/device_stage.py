"""Stage the working tree for a GPU machine that takes at most 64 MiB of it, and restore it afterwards.

    python scripts/device_stage.py size                 # what would travel now, largest first
    python scripts/device_stage.py stash vae unet ...   # move these shipped checkpoints out of the tree
    python scripts/device_stage.py restore              # move every stashed checkpoint back, then verify it

Stashed checkpoints go to ``.device/stash/`` (git-ignored, so they do not travel). ``restore``
checks each file against its manifest; a checkpoint that was never restored can also be
recovered with ``git checkout -- data/checkpoints``.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO / "data" / "checkpoints"
STASH = REPO / ".device" / "stash"


def travelling_files() -> list[tuple[int, str]]:
    """(bytes, path) of the tracked and untracked-but-not-ignored files that exist, largest first."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    sizes = [((REPO / name).stat().st_size, name) for name in names if name and (REPO / name).is_file()]
    return sorted(sizes, reverse=True)


def size() -> None:
    files = travelling_files()
    print(f"{sum(s for s, _ in files) / 2**20:.1f} MiB in {len(files)} files (limit 64 MiB, carried paths extra)")
    for bytes_, name in files[:10]:
        print(f"  {bytes_ / 2**20:6.1f} MiB  {name}")


def stash(names: list[str]) -> None:
    STASH.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = CHECKPOINTS / name
        if not (source / "manifest.json").is_file():
            sys.exit(f"{source}: no shipped checkpoint of that name")
        if (STASH / name).exists():
            sys.exit(f"{STASH / name} already exists: restore first")
        shutil.move(str(source), str(STASH / name))
        print(f"stashed {source.relative_to(REPO)}")
    size()


def restore() -> None:
    sys.path.insert(0, str(REPO))
    from ipbench.training.manifest import verify

    for folder in sorted(STASH.iterdir()) if STASH.is_dir() else []:
        target = CHECKPOINTS / folder.name
        if target.exists():
            sys.exit(f"{target} exists: it was replaced while stashed; compare it with {folder} and remove one")
        shutil.move(str(folder), str(target))
        verify(target, f"recover it with `git checkout -- {target.relative_to(REPO)}`")
        print(f"restored and verified {target.relative_to(REPO)}")


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["size"]
    {"size": lambda: size(), "stash": lambda: stash(rest), "restore": lambda: restore()}[command]()
