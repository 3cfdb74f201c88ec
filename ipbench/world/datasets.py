"""Write mini-world datasets: numbered PNGs plus ``attributes.csv`` (scene fields, caption, file)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from PIL import Image

from ipbench.world.render import Scene, random_caption, render, sample_scene, scene_rng


def write_dataset(out_dir, split: str, n: int, seed: int, p_drop: float = 0.0) -> Path:
    """Render ``n`` scenes of ``split`` into ``out_dir`` (which must not exist yet).

    Scene ``i`` comes from ``scene_rng(split, seed, i)``, so a dataset is a pure
    function of its arguments, and the caption's random drops (``p_drop``) are
    drawn after the scene, leaving the images the same for any ``p_drop``.
    Everything is written into a temporary sibling folder first and renamed
    at the end, so ``out_dir`` either is complete or does not exist.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; remove it first")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        rows = []
        for index in range(n):
            rng = scene_rng(split, seed, index)
            scene = sample_scene(rng, split)
            file = f"{index:06d}.png"
            Image.fromarray(render(scene)).save(staging / file)
            rows.append({"file": file, "split": split, "seed": seed, "index": index, **scene.to_dict(),
                         "caption": random_caption(scene, rng, p_drop)})
        # Nullable ints keep blob_seed an integer next to the empty cells of non-blobs.
        table = pd.DataFrame(rows).astype({"blob_seed": "Int64"})
        table.to_csv(staging / "attributes.csv", index=False)
        os.chmod(staging, 0o755)  # mkdtemp makes it private
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def read_scenes(dataset_dir) -> list[Scene]:
    """The scenes of a dataset written by :func:`write_dataset`, in row (file) order."""
    table = pd.read_csv(Path(dataset_dir) / "attributes.csv", dtype=str, keep_default_na=False)
    scenes = []
    for row in table.to_dict("records"):
        scenes.append(Scene(
            shape=row["shape"], colour=row["colour"], texture=row["texture"] or None, size=row["size"],
            position=row["position"], background=row["background"], rotation=float(row["rotation"]),
            jitter_x=float(row["jitter_x"]), jitter_y=float(row["jitter_y"]),
            blob_seed=int(row["blob_seed"]) if row["blob_seed"] else None,
        ))
    return scenes
