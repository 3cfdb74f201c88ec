"""Real image sets shared across tasks: the key that says so must match the images the builders write."""
from ipbench import datasets


def _real_pngs(out_dir):
    return {path.name: path.read_bytes() for path in sorted((out_dir / "real").glob("*.png"))}


def test_mini_world_tasks_with_one_real_set_key_write_the_same_real_images(tmp_path):
    options = {"n_items": 2, "n_real": 3, "seed": 4}
    for task in ("variation", "text2image"):
        datasets.mini_world(task, tmp_path / task, **options)
    variation, text2image = _real_pngs(tmp_path / "variation"), _real_pngs(tmp_path / "text2image")
    assert len(variation) == 3 and variation == text2image
    key = datasets.real_set_key({"source": "mini_world", **options})
    assert key == datasets.real_set_key({"source": "mini_world", **options, "n_items": 5})

    other = {**options, "seed": 5}
    datasets.mini_world("variation", tmp_path / "other", **other)
    assert _real_pngs(tmp_path / "other") != variation
    assert datasets.real_set_key({"source": "mini_world", **other}) != key


def test_sources_without_a_shared_real_set_have_no_key():
    assert datasets.real_set_key({"source": "skimage_photos", "n_real": 3}) is None
    assert datasets.real_set_key({"source": "coco_captions"}) is None
