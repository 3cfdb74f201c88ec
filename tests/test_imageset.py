import hashlib

import numpy as np
import pytest
from PIL import Image

from ipbench import datasets
from ipbench.imageset import (
    check_item_id, generate_shard, merge_manifests, plan_batches, png_bytes, requests_for, shard_batches, write_shard,
)
from ipbench.io import read_jsonl
from ipbench.seeds import item_seed
from methods import get_method


def test_seed_depends_on_every_field_and_nothing_else():
    base = item_seed("mini", "variation", "item-1", 0)
    assert base == item_seed("mini", "variation", "item-1", 0)
    assert 0 <= base < 2**63
    others = {item_seed("paper", "variation", "item-1", 0), item_seed("mini", "subject", "item-1", 0),
              item_seed("mini", "variation", "item-2", 0), item_seed("mini", "variation", "item-1", 1)}
    assert base not in others and len(others) == 4


def test_seed_fields_cannot_run_together():
    # ("ab", "c") and ("a", "bc") must not hash the same key.
    assert item_seed("ab", "c", "x", 0) != item_seed("a", "bc", "x", 0)


@pytest.mark.parametrize("bad", ["", "../up", "a/b", "with space", "-lead"])
def test_item_ids_must_be_file_names(bad):
    with pytest.raises(ValueError, match="item id"):
        check_item_id(bad)


def test_png_bytes_are_reproducible_and_lossless():
    image = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    assert png_bytes(image) == png_bytes(image.copy())
    from io import BytesIO

    assert np.array_equal(np.asarray(Image.open(BytesIO(png_bytes(image)))), image)
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(image.astype(np.float32))


def _generate(tmp, data_dir, items, n_shards, method, batch_size=2):
    set_dir = tmp / f"shards{n_shards}"
    shard_dirs = []
    for shard in range(n_shards):
        requests, images = generate_shard(method, items, suite="smoke", task="variation", samples=2,
                                          batch_size=batch_size, shard=shard, n_shards=n_shards, data_dir=data_dir)
        name = f"shard-{shard:03d}"
        write_shard(set_dir / name, name, requests, images)
        shard_dirs.append(set_dir / name)
    return merge_manifests(shard_dirs, set_dir / "manifest.jsonl")


def _items(ids, subjects=None):
    return [{"id": i, "condition": {} if subjects is None else {"subject": s}} for i, s in zip(ids, subjects or ids)]


def test_batches_are_fixed_groups_of_sorted_ids():
    items = _items(["e", "a", "d", "b", "c"])
    batches = [[item["id"] for item in batch] for batch in plan_batches(items, 2)]
    assert batches == [["a", "b"], ["c", "d"], ["e"]]
    # a shard takes whole batches; the batches are the same whatever the shard count
    for n_shards in (1, 2, 3):
        dealt = [[[i["id"] for i in b] for b in shard_batches(plan_batches(items, 2), k, n_shards)]
                 for k in range(n_shards)]
        assert sorted(b for shard in dealt for b in shard) == sorted(batches)
    with pytest.raises(ValueError, match="shard 3 out of range"):
        shard_batches(plan_batches(items, 2), 3, 3)


def test_grouped_batches_never_mix_groups_and_shards_take_whole_groups():
    items = _items(["s0-a", "s0-b", "s0-c", "s1-a", "s2-a", "s2-b"], ["s0", "s0", "s0", "s1", "s2", "s2"])
    batches = plan_batches(items, 2, group_by="subject")
    assert [[i["id"] for i in b] for b in batches] == [["s0-a", "s0-b"], ["s0-c"], ["s1-a"], ["s2-a", "s2-b"]]
    for n_shards in (1, 2, 3):
        owners = {}
        for shard in range(n_shards):
            for batch in shard_batches(batches, shard, n_shards, group_by="subject"):
                owners.setdefault(batch[0]["condition"]["subject"], set()).add(shard)
        assert all(len(shards) == 1 for shards in owners.values()) and len(owners) == 3


def test_a_method_that_returns_too_few_images_names_itself(tmp_path):
    class Short:
        name = "short"

        def generate(self, requests, data_dir):
            return [np.zeros((4, 4, 3), np.uint8)] * (len(requests) - 1)

    with pytest.raises(ValueError, match="'short' returned 3 images for 4 requests"):
        generate_shard(Short(), _items(["a", "b"]), suite="s", task="t", samples=2, batch_size=2, shard=0,
                       n_shards=1, data_dir=tmp_path)


def test_images_do_not_depend_on_shard_count(tmp_path):
    data_dir = tmp_path / "data"
    datasets.build("skimage_photos", "variation", data_dir, n_items=5, n_real=2, image_size=32, seed=0)
    items = read_jsonl(data_dir / "items.jsonl")
    method = get_method("augment")(tmp_path, {}, "cpu")
    one = _generate(tmp_path, data_dir, items, 1, method)
    three = _generate(tmp_path, data_dir, items, 3, method)
    key = lambda rows: {(r["item_id"], r["sample_index"]): (r["seed"], r["sha256"]) for r in rows}  # noqa: E731
    assert len(one) == 10
    assert key(one) == key(three)
    # and the two samples of an item really differ, so the comparison above means something
    assert one[0]["sha256"] != one[1]["sha256"]


def test_pngs_encoded_in_threads_during_generation_write_the_same_shard(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    requests = requests_for("smoke", "variation", _items(["a", "b", "c"]), samples=2)
    images = [np.random.default_rng(i).integers(0, 256, (9, 7, 3), dtype=np.uint8) for i in range(len(requests))]
    write_shard(tmp_path / "serial", "shard-000", requests, images)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(png_bytes, image) for image in images]
        write_shard(tmp_path / "threads", "shard-000", requests, images, pngs=futures)
    for name in ["manifest.jsonl"] + [f"{r.item_id}_s{r.sample_index:02d}.png" for r in requests]:
        assert (tmp_path / "threads" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
    with pytest.raises(ValueError, match="2 encoded images for 6 requests"):
        write_shard(tmp_path / "short", "shard-000", requests, images, pngs=futures[:2])
    assert not (tmp_path / "short").exists()


def test_merge_detects_a_tampered_image(tmp_path):
    data_dir = tmp_path / "data"
    datasets.build("skimage_photos", "variation", data_dir, n_items=2, n_real=2, image_size=32, seed=0)
    rows = _generate(tmp_path, data_dir, read_jsonl(data_dir / "items.jsonl"), 1, get_method("augment")(tmp_path))
    victim = tmp_path / "shards1" / rows[0]["path"]
    victim.write_bytes(png_bytes(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(ValueError, match=victim.name):
        merge_manifests([tmp_path / "shards1" / "shard-000"], tmp_path / "shards1" / "manifest.jsonl")


def test_failed_shard_leaves_nothing_behind(tmp_path):
    requests = requests_for("smoke", "variation", [{"id": "a", "condition": {}}], samples=2)
    with pytest.raises(ValueError):
        write_shard(tmp_path / "shard-000", "shard-000", requests, [np.zeros((4, 4, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


def test_photo_dataset_is_deterministic_and_records_conversion(tmp_path):
    for name in ("a", "b"):
        datasets.build("skimage_photos", "variation", tmp_path / name, n_items=3, n_real=3, image_size=24, seed=1)
    digest = lambda d: sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in d.rglob("*.png"))  # noqa: E731
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    modes = {row["condition"]["source_mode"] for row in read_jsonl(tmp_path / "a" / "items.jsonl")}
    assert modes <= {"RGB", "RGBA", "L"}
    with pytest.raises(ValueError, match="data.source"):
        datasets.build("coco", "variation", tmp_path / "c")
    with pytest.raises(ValueError, match="data.n_subjects"):
        datasets.build("skimage_photos", "variation", tmp_path / "d", n_items=2, n_real=2, n_subjects=3)



@pytest.mark.parametrize("damage", ["deleted", "replaced", "truncated"])
def test_an_image_set_is_read_as_generated_or_not_at_all(tmp_path, damage):
    """Features and metrics read an image set through its manifest's hashes: a file deleted, replaced by
    another valid PNG, or truncated since generation is an error naming it (with how to regenerate)."""
    from metrics.images import ImageError, list_images

    rng = np.random.default_rng(0)
    requests = requests_for("smoke", "variation", _items(["a", "b"]), 1)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in requests]
    write_shard(tmp_path / "set" / "shard-000", "shard-000", requests, images)
    rows = merge_manifests([tmp_path / "set" / "shard-000"], tmp_path / "set" / "manifest.jsonl")
    assert len(list_images(tmp_path / "set")) == 2
    target = tmp_path / "set" / rows[1]["path"]
    if damage == "deleted":
        target.unlink()
    elif damage == "replaced":
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(target)
    else:
        target.write_bytes(target.read_bytes()[:20])
    expected = "missing" if damage == "deleted" else "changed since"
    with pytest.raises(ImageError, match=rf"{target.name}: .*{expected}.*delete .*set and rerun"):
        list_images(tmp_path / "set")
