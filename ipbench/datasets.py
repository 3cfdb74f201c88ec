"""Task data sources. Each builder writes one task's items and its real image set.

A builder writes into ``out_dir``:
- ``items.jsonl``: one row per item, ``{"id", "condition": {...}, "truth": {...}}``.
  Methods see only ``condition`` (image paths relative to ``out_dir``, the
  prompt); ``truth`` holds ground truth for metrics (the mini world's scene
  attributes), never shown to a method except the ``oracle`` method;
- ``conditions/``: the condition images (image prompts);
- ``real/``: real images with ``manifest.jsonl``, the FID/KID real image
  set, disjoint from the conditions.
"""
from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import numpy as np
from PIL import Image

from ipbench.imageset import png_bytes
from ipbench.io import atomic_directory, write_jsonl

# scikit-image's bundled photos (no download) with a caption each. Grey or
# RGBA photos are converted to RGB, and the item records the original mode.
SKIMAGE_PHOTOS = {
    "astronaut": "an astronaut in a white space suit",
    "chelsea": "a tabby cat",
    "coffee": "a cup of coffee on a saucer",
    "rocket": "a rocket on a launch pad",
    "hubble_deep_field": "galaxies in deep space",
    "immunohistochemistry": "a stained tissue sample under a microscope",
    "retina": "a photograph of a human retina",
    "colorwheel": "a colour wheel",
    "logo": "the scikit-image logo",
    "camera": "a man with a camera on a tripod",
    "brick": "a brick wall",
    "grass": "a patch of grass",
    "gravel": "gravel on the ground",
    "moon": "the surface of the moon",
    "coins": "old coins",
    "clock": "a clock on a wall",
}


def _load_photo(name: str) -> tuple[np.ndarray, str]:
    import skimage.data

    array = getattr(skimage.data, name)()
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[2] if array.ndim == 3 else 2]
    image = Image.fromarray(array, mode if mode != "L" else None)
    return np.asarray(image.convert("RGB")), mode


def _random_crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.45, 0.8) * min(height, width))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = Image.fromarray(photo[top:top + side, left:left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def _crop_seed(seed: int, role: str, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{role}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def skimage_photos(task: str, out_dir: Path, *, n_items: int, n_real: int, image_size: int = 128,
                   seed: int = 0) -> None:
    """Random square crops of scikit-image's photos: conditions and a disjoint real image set."""
    _supports("skimage_photos", task, ("variation",))
    names = sorted(SKIMAGE_PHOTOS)
    photos = {name: _load_photo(name) for name in names}
    with atomic_directory(out_dir) as tmp:
        items, real = [], []
        for role, count in (("conditions", n_items), ("real", n_real)):
            (tmp / role).mkdir()
            for index in range(count):
                name = names[index % len(names)]
                photo, mode = photos[name]
                rng = np.random.default_rng(_crop_seed(seed, role, index))
                file_name = f"{name}-{index:04d}.png"
                (tmp / role / file_name).write_bytes(png_bytes(_random_crop(photo, rng, image_size)))
                record = {"source": f"skimage.data.{name}", "source_mode": mode}
                if role == "conditions":
                    items.append({"id": f"{name}-{index:04d}", "condition": {
                        "image": f"conditions/{file_name}", "prompt": SKIMAGE_PHOTOS[name], **record}})
                else:
                    real.append({"path": file_name, "caption": SKIMAGE_PHOTOS[name], **record})
        write_jsonl(tmp / "items.jsonl", items)
        write_jsonl(tmp / "real" / "manifest.jsonl", real)


def _supports(source: str, task: str, tasks: tuple[str, ...]) -> None:
    if task not in tasks:
        raise ValueError(f"config key data.source: {source} has no data for task {task!r} (it has {tasks})")


def _write_render(path: Path, scene) -> None:
    from ipbench.world.render import render

    path.write_bytes(png_bytes(render(scene)))


def mini_world(task: str, out_dir: Path, *, n_items: int, n_real: int, seed: int = 0,
               n_subjects: int = 20, n_refs: int = 4, prompts_per_subject: int = 24) -> None:
    """The mini world's test split: exact ground truth for every item.

    - ``variation``: a test render is the image prompt, its full caption the text;
    - ``subject``: a held-out blob's ``n_refs`` reference renders plus a prompt
      asking for a background, position or size (DreamBench style);
    - ``text2image``: only a fresh test scene's full caption; the scene is the
      ground truth every attribute is checked against (GenEval style).
    The real image set is always fresh test renders, disjoint from the items.
    """
    from ipbench.world.render import Scene, caption, sample_scene, scene_rng, subject_set

    _supports("mini_world", task, ("variation", "subject", "text2image"))
    with atomic_directory(out_dir) as tmp:
        (tmp / "conditions").mkdir()
        (tmp / "real").mkdir()
        items, real = [], []
        if task == "variation":
            for index in range(n_items):
                scene = sample_scene(scene_rng("test", seed, index), "test")
                name = f"test-{index:05d}"
                _write_render(tmp / "conditions" / f"{name}.png", scene)
                items.append({"id": name, "condition": {"image": f"conditions/{name}.png", "prompt": caption(scene)},
                              "truth": {"scene": scene.to_dict(), "attributes": _attributes(scene)}})
        elif task == "text2image":
            # Scene indices from 2_000_000 on: disjoint from the variation items (from 0) and the
            # real set (from 1_000_000).
            for index in range(n_items):
                scene = sample_scene(scene_rng("test", seed, 2_000_000 + index), "test")
                items.append({"id": f"caption-{index:05d}", "condition": {"prompt": caption(scene)},
                              "truth": {"scene": scene.to_dict(), "attributes": _attributes(scene)}})
        else:
            for subject in subject_set(n_subjects, n_refs):
                refs = []
                for k, scene in enumerate(subject.references):
                    refs.append(f"conditions/{subject.subject_id}-ref{k}.png")
                    _write_render(tmp / refs[-1], scene)
                # Spread the chosen prompts over the kinds (background, position, size, combined).
                chosen = np.unique(np.linspace(0, len(subject.prompts) - 1, prompts_per_subject).round().astype(int))
                for p in chosen:
                    prompt = subject.prompts[p]
                    target = Scene.from_dict({**subject.references[0].to_dict(), **prompt.target})
                    items.append({"id": f"{subject.subject_id}-p{p:02d}",
                                  "condition": {"images": refs, "prompt": prompt.text, "subject": subject.subject_id},
                                  "truth": {"scene": target.to_dict(), "attributes": prompt.target}})
        # Real-set renders come after every item index, so the two never share a scene.
        for index in range(n_real):
            scene = sample_scene(scene_rng("test", seed, 1_000_000 + index), "test")
            name = f"ref-{index:05d}.png"
            _write_render(tmp / "real" / name, scene)
            real.append({"path": name, "caption": caption(scene)})
        write_jsonl(tmp / "items.jsonl", items)
        write_jsonl(tmp / "real" / "manifest.jsonl", real)


def _attributes(scene) -> dict:
    from ipbench.world.render import ATTRIBUTES

    return {name: getattr(scene, name) for name in ATTRIBUTES if getattr(scene, name) is not None}


BUILDERS = {"skimage_photos": skimage_photos, "mini_world": mini_world}


def builders() -> dict:
    """Every data source: the offline ones above and the paper suite's downloads (ipbench.paper_data)."""
    from ipbench import paper_data

    return {**BUILDERS, **paper_data.BUILDERS}


# The options that alone determine a source's real image set, for sources whose real set does not depend
# on the task (mini_world: fresh test renders from scene index 1,000,000 on). Tasks with equal values share
# one set, so its Inception features are computed once; other sources draw a real set per task.
REAL_SET_OPTIONS = {"mini_world": ("seed", "n_real")}


def real_set_key(options: dict) -> tuple | None:
    """What identifies a task's real image set across tasks, or None where each task has its own."""
    keys = REAL_SET_OPTIONS.get(options["source"])
    return None if keys is None else (options["source"], *(options.get(key) for key in keys))


def subject_ids(options: dict) -> list[str]:
    """The subject ids a data source's ``subject`` task will have, known before its data is built."""
    if options["source"] == "mini_world":
        return [f"subject{index:02d}" for index in range(options.get("n_subjects", 20))]
    if options["source"] == "dreambench":
        from ipbench import paper_data

        return options.get("subjects") or paper_data.dreambench_subjects()
    return []


def build(source: str, task: str, out_dir: Path, **options) -> None:
    known = builders()
    if source not in known:
        raise ValueError(f"config key data.source: unknown source {source!r}; known: {sorted(known)}")
    accepted = inspect.signature(known[source]).parameters
    for key in options:
        if key not in accepted:
            raise ValueError(f"config key data.{key}: not an option of data source {source!r}")
    known[source](task, Path(out_dir), **options)
