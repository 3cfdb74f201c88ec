"""python -m metrics: JSON results equal the library functions; bad inputs exit 2 naming the file."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from metrics import fid, inception
from metrics.__main__ import main, read_captions
from metrics.images import list_images
from metrics.stats import bootstrap_mean_ci, bootstrap_set_ci

REPO = Path(__file__).resolve().parents[1]


def run_cli(*argv) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, json.loads(out.getvalue()) if code == 0 else None, err.getvalue()


def write_png(path: Path, seed: int, size=(36, 40), base=None, mode="RGB") -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, 3) if base is None else np.asarray(base)
    pixels = np.clip(base + rng.normal(0, 50, (*size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """DIR_A: an ipbench-style set (2 items x 2 samples, with a manifest); DIR_B: a plain folder of 4."""
    root = tmp_path_factory.mktemp("cli")
    rows = []
    for k, (item, sample) in enumerate([("dog", 0), ("cat", 0), ("dog", 1), ("cat", 1)]):
        name = f"shard-000/{item}_s{sample:02d}.png"
        write_png(root / "a" / name, seed=k, mode="L" if k == 2 else "RGB")
        rows.append({"item_id": item, "sample_index": sample, "path": name,
                     "condition": {"prompt": f"a photo of a {item}"}})
    (root / "a" / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    for k in range(4):
        write_png(root / "b" / f"{k}.png", seed=10 + k, base=(200, 40, 40))
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def features(folders):
    return [inception.extract_features(list_images(folder), device="cpu") for folder in folders]


@pytest.fixture(scope="module")
def fid_result(folders):
    # A few images against Inception's 2048 dimensions: fid_from_features takes the exact small-n identity.
    return run_cli("fid", *folders, "--device", "cpu", "--n-boot", 50)  # batch size as in `features`


@pytest.mark.slow
def test_fid_json_equals_library(folders, features, fid_result):
    code, result, _ = fid_result
    assert code == 0
    features_a, features_b = features
    assert result["value"] == pytest.approx(fid.fid_from_features_fast(features_a, features_b), rel=1e-9)
    assert result["metric"] == "fid" and result["backbone"] == inception.INCEPTION
    assert (result["n"], result["n_a"], result["n_b"]) == (4, 4, 4)
    assert result["converted"] == [f"{folders[0] / 'shard-000' / 'dog_s01.png'} (L: expanded to RGB)"]


@pytest.mark.slow
def test_fid_ci_resamples_manifest_items(features, fid_result):
    _, result, _ = fid_result
    features_a, features_b = features
    # Manifest rows are dog, cat, dog, cat: an item's two samples move together.
    items = [features_a[[0, 2]], features_a[[1, 3]]]
    expected = bootstrap_set_ci(fid.fid_from_features_fast, items, features_b, n_boot=50, seed=0)
    assert result["ci95"] == pytest.approx(list(expected), rel=1e-9)
    assert result["ci_unit"].startswith("items")


@pytest.mark.slow
def test_kid_json_equals_library(folders, features):
    code, result, _ = run_cli("kid", *folders, "--device", "cpu", "--subsets", 7, "--subset-size", 3,
                              "--seed", 4, "--n-boot", 0)
    assert code == 0
    expected = fid.kid_from_features(*features, num_subsets=7, max_subset_size=3, seed=4)
    assert result["value"] == pytest.approx(expected, rel=1e-9)
    assert result["metric"] == "kid" and result["ci95"] is None


def test_lpips_json_equals_library(tmp_path):
    from metrics.lpips_metric import LPIPS_NAMES, lpips_distances

    for k in range(3):
        write_png(tmp_path / "x" / f"{k}.png", seed=k, size=(40, 48))
        write_png(tmp_path / "y" / f"{k}.png", seed=20 + k, size=(40, 48))
    code, result, _ = run_cli("lpips", tmp_path / "x", tmp_path / "y", "--device", "cpu", "--n-boot", 100)
    assert code == 0
    arrays = {side: [np.asarray(Image.open(tmp_path / side / f"{k}.png")) for k in range(3)] for side in "xy"}
    distances = lpips_distances(arrays["x"], arrays["y"], net="alex", device="cpu")
    assert result["value"] == pytest.approx(distances.mean(), rel=1e-9)
    assert result["ci95"] == pytest.approx(list(bootstrap_mean_ci(distances, n_boot=100)), rel=1e-9)
    assert result["backbone"] == LPIPS_NAMES["alex"] and result["n"] == 3


def test_help_lists_every_metric():
    completed = subprocess.run([sys.executable, "-m", "metrics", "--help"], cwd=REPO, capture_output=True,
                               text=True, check=True)
    for metric in ("fid", "kid", "lpips", "clip-t", "clip-i", "dino"):
        assert f"\n    {metric} " in completed.stdout


def test_empty_folder_exits_2(tmp_path, folders):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("fid", tmp_path / "empty", folders[1], "--device", "cpu")
    assert code == 2 and str(tmp_path / "empty") in err and "Traceback" not in err


@pytest.mark.parametrize("metric", ["fid", "kid"])
def test_a_set_of_one_image_exits_2_naming_the_folder(tmp_path, folders, metric):
    write_png(tmp_path / "one" / "a.png", 0)
    code, _, err = run_cli(metric, tmp_path / "one", folders[1], "--device", "cpu")
    assert code == 2 and f"{tmp_path / 'one'}: {metric.upper()} needs at least 2 images, found 1" in err


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_bad_png_exits_2_naming_it(tmp_path, folders, damage):
    good = write_png(tmp_path / "set" / "good.png", seed=1)
    bad = tmp_path / "set" / "bad.png"
    data = good.read_bytes()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200) if damage == "corrupt" else data[: len(data) // 2])
    code, _, err = run_cli("kid", tmp_path / "set", folders[1], "--device", "cpu", "--n-boot", 0)
    assert code == 2 and str(bad) in err and "Traceback" not in err


def test_mismatched_lpips_pairs_exit_2(tmp_path):
    write_png(tmp_path / "x" / "same.png", seed=1)
    write_png(tmp_path / "x" / "only_x.png", seed=2)
    write_png(tmp_path / "y" / "same.png", seed=3)
    code, _, err = run_cli("lpips", tmp_path / "x", tmp_path / "y", "--device", "cpu")
    assert code == 2 and "only_x.png" in err and "Traceback" not in err


def test_captions_from_manifest_and_jsonl(tmp_path, folders):
    dir_a = folders[0]
    paths = list_images(dir_a)
    assert read_captions(dir_a / "manifest.jsonl", dir_a, paths) == [
        "a photo of a dog", "a photo of a cat", "a photo of a dog", "a photo of a cat"]
    captions = tmp_path / "captions.jsonl"
    names = [p.relative_to(dir_a).as_posix() for p in paths]
    captions.write_text("".join(json.dumps({"path": n, key: f"text {i}"}) + "\n"
                                for i, (n, key) in enumerate(zip(names, ["caption", "prompt"] * 2))))
    assert read_captions(captions, dir_a, paths) == ["text 0", "text 1", "text 2", "text 3"]


def test_clip_t_missing_caption_exits_2(tmp_path, folders):
    dir_a = folders[0]
    captions = tmp_path / "captions.jsonl"
    captions.write_text(json.dumps({"path": "shard-000/dog_s00.png", "caption": "a dog"}) + "\n")
    code, _, err = run_cli("clip-t", dir_a, "--captions", captions, "--backbone", "hf-clip:/nowhere")
    assert code == 2 and "cat_s00.png" in err and str(captions) in err
