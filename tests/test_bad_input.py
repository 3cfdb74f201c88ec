"""Bad input, kind by kind: the error (or the exit code), the message naming the file or key, and that
nothing finished was lost. Unit-level where the check lives in a function; the command line where the user
meets it (`python -m metrics` exits 2); one dry run for the config (tests/test_registry_and_config.py has more).
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipbench import imageset, io as ipbench_io, tables
from ipbench.jobs import failure_summary, job_cause
from ipbench.training.manifest import HASH_CACHE, recheck_verified, write_verified
from metrics.__main__ import main as metrics_main
from metrics.images import size_warning
from metrics.weights import WeightsError, check_architecture, sha256_file
from tests.workflow_utils import REPO, copy_code, smoke_config, snakemake, write_config


def cli(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = metrics_main([str(a) for a in argv])
    return code, err.getvalue()


def png(path: Path, seed: int = 0, size=(40, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def image_set(folder: Path, n: int = 3) -> list[dict]:
    """An ipbench image set: PNGs and a manifest recording their sha256."""
    rows = []
    for k in range(n):
        path = png(folder / "shard-000" / f"item{k}_s00.png", seed=k)
        rows.append({"item_id": f"item{k}", "sample_index": 0, "path": f"shard-000/{path.name}",
                     "sha256": sha256_file(path)})
    ipbench_io.write_jsonl(folder / "manifest.jsonl", rows)
    return rows


# ---- shipped checkpoints: checked again by every job that loads them


@pytest.fixture
def checkpoint(tmp_path):
    """A verified toy artifact: (its folder, its verified.json)."""
    folder = tmp_path / "data" / "checkpoints" / "toy"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 8)
    (folder / "config.json").write_text('{"_class_name": "AutoencoderKL"}\n')
    files = {name: sha256_file(folder / name) for name in ("model.safetensors", "config.json")}
    (folder / "manifest.json").write_text(json.dumps({"artifact": "toy", "files": files}))
    verified = tmp_path / "results" / "checkpoints" / "toy" / "verified.json"
    write_verified(verified, folder, "toy")
    return folder, verified


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupted_checkpoint_fails_the_next_job_naming_the_file_and_the_fix(checkpoint):
    folder, verified = checkpoint
    recheck_verified(verified)  # unchanged: a stat per file
    weights = folder / "model.safetensors"
    _flip_a_byte(weights)  # same size, new mtime
    with pytest.raises(WeightsError) as error:
        recheck_verified(verified)
    message = str(error.value)
    assert f"{weights}: sha256" in message and f"git checkout -- {weights}" in message
    assert "--config retrain=toy" in message
    assert verified.exists()  # the record of the earlier, good check stays; the job fails instead


def test_the_hash_cache_reads_a_file_again_only_when_its_size_or_mtime_changed(checkpoint):
    folder, verified = checkpoint
    cache = json.loads(verified.with_name(HASH_CACHE).read_text())
    weights = folder / "model.safetensors"
    stat = weights.stat()
    assert cache[str(weights)] == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                   "sha256": sha256_file(weights)}
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # touched, same bytes (e.g. git checkout)
    recheck_verified(verified)
    assert json.loads(verified.with_name(HASH_CACHE).read_text())[str(weights)]["mtime_ns"] == stat.st_mtime_ns + 1


def test_a_rewrite_that_keeps_size_and_mtime_is_seen_only_by_the_full_check(checkpoint):
    """The documented limit of the cheap check (docs/layout.md): same size and mtime are trusted."""
    folder, verified = checkpoint
    weights = folder / "model.safetensors"
    stat = weights.stat()
    _flip_a_byte(weights)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    recheck_verified(verified)  # not seen
    with pytest.raises(WeightsError, match="model.safetensors: sha256"):  # `--forcerun verify_artifact` sees it
        write_verified(verified, folder, "toy")


def test_a_deleted_checkpoint_file_fails_naming_it(checkpoint):
    folder, verified = checkpoint
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"model.safetensors: missing checkpoint file listed in .*manifest.json"):
        recheck_verified(verified)


def test_a_checkpoint_of_the_wrong_architecture_is_refused_naming_the_folder(checkpoint, tmp_path):
    folder, _ = checkpoint
    check_architecture(folder, "AutoencoderKL")
    with pytest.raises(WeightsError, match=f"{folder}: holds a AutoencoderKL checkpoint .*not the "
                                           "UNet2DConditionModel loaded here"):
        check_architecture(folder, "UNet2DConditionModel")
    from ipbench.world.pipeline import assemble_pipeline

    unet = REPO / "data" / "checkpoints" / "unet"
    with pytest.raises(WeightsError, match=f"{unet}: holds a UNet2DConditionModel checkpoint"):
        assemble_pipeline(tmp_path / "pipe", unet, unet, REPO / "data" / "checkpoints" / "cond_clip")
    assert not (tmp_path / "pipe").exists()


# ---- image sets: read as generated, or not at all


@pytest.mark.parametrize("damage", ["deleted", "replaced", "truncated"])
def test_a_damaged_png_of_an_image_set_exits_2_naming_it_and_how_to_regenerate(tmp_path, damage):
    image_set(tmp_path / "set")
    png(tmp_path / "other" / "a.png")
    png(tmp_path / "other" / "b.png", seed=1)
    victim = tmp_path / "set" / "shard-000" / "item1_s00.png"
    if damage == "deleted":
        victim.unlink()
    elif damage == "replaced":
        png(victim, seed=99)
    else:
        victim.write_bytes(victim.read_bytes()[:100])
    code, err = cli("kid", tmp_path / "set", tmp_path / "other", "--n-boot", 0, "--device", "cpu")
    assert code == 2 and str(victim) in err and "rerun to regenerate" in err and "Traceback" not in err
    assert (tmp_path / "set" / "manifest.jsonl").exists()


@pytest.mark.parametrize("line, problem", [("{not json", "invalid JSON"), ('{"item_id": "x"}', "row has no 'path' key")])
def test_a_corrupt_manifest_line_exits_2_naming_the_line(tmp_path, line, problem):
    image_set(tmp_path / "set")
    manifest = tmp_path / "set" / "manifest.jsonl"
    rows = manifest.read_text().splitlines()
    manifest.write_text("\n".join([rows[0], line, *rows[1:]]) + "\n")
    code, err = cli("lpips", tmp_path / "set", tmp_path / "set")
    assert code == 2 and f"{manifest}:2: {problem}" in err


def test_lpips_of_two_sizes_exits_2_naming_both_files(tmp_path):
    a, b = png(tmp_path / "a" / "x.png", size=(40, 40)), png(tmp_path / "b" / "x.png", size=(48, 40))
    code, err = cli("lpips", tmp_path / "a", tmp_path / "b", "--device", "cpu")
    assert code == 2 and f"{a} and {b} differ in size, (40, 40) vs (48, 40)" in err


@pytest.mark.parametrize("metric", ["fid", "kid"])
def test_a_set_metric_over_one_image_exits_2_naming_the_folder(tmp_path, metric):
    png(tmp_path / "one" / "a.png")
    image_set(tmp_path / "set")
    code, err = cli(metric, tmp_path / "one", tmp_path / "set", "--device", "cpu")
    assert code == 2 and f"{tmp_path / 'one'}: {metric.upper()} needs at least 2 images, found 1" in err


def test_a_set_of_mixed_sizes_is_a_warning_naming_the_folder_and_sizes(tmp_path):
    paths = [png(tmp_path / "mixed" / "a.png", size=(64, 64)), png(tmp_path / "mixed" / "b.png", size=(64, 64)),
             png(tmp_path / "mixed" / "c.png", size=(32, 48))]
    warning = size_warning(tmp_path / "mixed", paths)
    assert warning.startswith(f"{tmp_path / 'mixed'}: images of 2 sizes (48x32: 1, 64x64: 2 images)")
    assert size_warning(tmp_path / "mixed", paths[:2]) is None


def _long(metric: str, n: int, n_items: int, warnings: str = "") -> pd.DataFrame:
    return pd.DataFrame([{"method": "m", "metric": metric, "value": 1.0, "ci95_low": 0.9, "ci95_high": 1.1,
                          "n": n, "n_items": n_items, "backbone": "b", "convention": "c", "vs_baseline_p": float("nan"),
                          "warnings": warnings}])


def test_a_set_below_a_metrics_sensible_n_gets_a_warning_in_the_table_notes():
    notes = "\n".join(tables.notes(_long("fid", 8, 4, "set/: images of 2 sizes"), "smoke", "variation", "m"))
    assert "Warning, FID: small n: 8 images, below the 2048 it needs" in notes
    assert "Warning, FID: set/: images of 2 sizes (m)." in notes
    assert "KID×10³: small n" in "\n".join(tables.notes(_long("kid", 50, 50), "s", "t", "m"))
    assert "Warning" not in "\n".join(tables.notes(_long("kid", 100, 100), "s", "t", "m"))
    assert "CLIP-I: small n: 5 items, below the 20" in "\n".join(tables.notes(_long("clip_i", 10, 5), "s", "t", "m"))


# ---- generation: what a method returns, and the items it is given


class Returns:
    name = "returns"

    def __init__(self, image):
        self.image = image

    def generate(self, requests, data_dir):
        return [self.image for _ in requests]


def _items(*ids):
    return [{"id": item_id, "condition": {}} for item_id in ids]


@pytest.mark.parametrize("image, what", [
    (np.zeros((8, 8), np.uint8), "dtype uint8 and shape (8, 8)"),
    (np.zeros((8, 8, 3), np.float32), "dtype float32 and shape (8, 8, 3)"),
    (np.full((8, 8, 3), np.nan, np.float32), "dtype float32 holding NaN"),
])
def test_a_method_returning_a_bad_image_fails_naming_the_method_and_item(tmp_path, image, what):
    with pytest.raises(ValueError, match=re.escape(f"method 'returns', item 'a' sample 0: returned an image of {what}")):
        imageset.generate_shard(Returns(image), _items("a", "b"), suite="s", task="t", samples=1, batch_size=2,
                                shard=0, n_shards=1, data_dir=tmp_path)


def test_a_duplicate_item_id_fails_naming_the_items_file(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path / 'items.jsonl'}: item id 'a' appears 2 times"):
        imageset.generate_shard(Returns(np.zeros((8, 8, 3), np.uint8)), _items("a", "b", "a"), suite="s", task="t",
                                samples=1, batch_size=2, shard=0, n_shards=1, data_dir=tmp_path)


def test_a_full_disk_while_writing_a_shard_keeps_the_finished_one(tmp_path, monkeypatch):
    requests = imageset.requests_for("s", "t", _items("a", "b"), samples=1)
    images = [np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.uint8)]
    shard = tmp_path / "shard-000"
    imageset.write_shard(shard, shard.name, requests, images)
    finished = {p.name: p.read_bytes() for p in shard.iterdir()}

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match=f"{shard}: not written, what was there before is kept") as error:
        imageset.write_shard(shard, shard.name, requests, images[::-1])
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in shard.iterdir()} == finished
    assert [p.name for p in tmp_path.iterdir()] == ["shard-000"]  # no temporary left


def test_a_full_disk_while_writing_a_file_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    ipbench_io.atomic_write_json(target, {"value": 1})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ipbench_io.os, "replace", full)
    with pytest.raises(OSError, match=f"{target}: not written"):
        ipbench_io.atomic_write_json(target, {"value": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"value": 1} and list(tmp_path.iterdir()) == [target]


def test_a_training_set_that_fails_halfway_is_not_left_at_its_path(tmp_path, monkeypatch):
    """A reader that waits for the train set (benchmarks/cascade_segment.py) opened half a file once; the
    writer now streams into a temporary sibling that is renamed only when np.savez has finished."""
    from ipbench.world import train_data

    data = train_data.render_training_set(4, "train", seed=0)
    target = tmp_path / "train_set.npz"
    real_savez = train_data.np.savez

    def dies_after_a_member(handle, **arrays):
        real_savez(handle, images=arrays["images"])  # some bytes reach the handle first
        raise KeyboardInterrupt

    monkeypatch.setattr(train_data.np, "savez", dies_after_a_member)
    with pytest.raises(KeyboardInterrupt):
        train_data.save_npz(target, data)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    train_data.save_npz(target, data)
    assert len(train_data.load_npz(target)["images"]) == 4 and list(tmp_path.iterdir()) == [target]


def test_a_killed_writers_temporary_is_cleared_by_the_next_writer(tmp_path):
    stale = tmp_path / ".shard-000.abc123.tmp"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"\x89PNG")
    with ipbench_io.atomic_directory(tmp_path / "shard-000") as out:
        (out / "a.txt").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000"]


# ---- errors where the user looks: the console


def test_a_failed_jobs_cause_is_one_line_read_from_its_log(tmp_path):
    log = tmp_path / "evaluate.log"
    log.write_text("2026 INFO starting\nTraceback (most recent call last):\n  ...\n"
                   "cause: WeightsError: data/checkpoints/vae/x: sha256 differs; restore it\n")
    (tmp_path / "died.log").write_text("started\nKilled\n")  # no Python traceback: its last line
    snakemake_log = tmp_path / "run.snakemake.log"
    snakemake_log.write_text(
        f"Error in rule evaluate:\n    jobid: 3\n    log: {log} (check log file(s) for error details)\n"
        f"Select jobs to execute...\nError in rule generate_shard:\n    message: None\n"
        f"    log: {tmp_path / 'died.log'}, {tmp_path / 'x.snakemake.log'} (check log file(s) for error details)\n")
    assert job_cause(log) == "WeightsError: data/checkpoints/vae/x: sha256 differs; restore it"
    assert failure_summary([str(snakemake_log)]).splitlines() == [
        "Failed jobs and their causes:",
        f"  evaluate: WeightsError: data/checkpoints/vae/x: sha256 differs; restore it  [{log}]",
        f"  generate_shard: Killed  [{tmp_path / 'died.log'}]"]


# ---- the config: fails before any job runs


def test_a_bad_config_value_fails_the_dry_run_naming_the_key_and_writes_nothing(tmp_path):
    copy_code(tmp_path)
    config = smoke_config()
    config["methods"]["augment"]["params"]["jitter"] = "lots"
    result = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, config))
    assert result.returncode == 1
    assert "methods.augment.params.jitter" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_evaluation_carries_a_mixed_size_warning_of_either_set_into_its_record(tmp_path):
    from ipbench.evaluation import evaluate

    manifest = [{"item_id": f"i{k}", "sample_index": 0, "path": f"shard-000/i{k}_s00.png"} for k in range(6)]
    rng = np.random.default_rng(0)
    features = {"ids": [row["path"] for row in manifest], "features": rng.normal(size=(6, 16)),
                "info": {"backbone": "inception", "size_warning": "images/x: images of 2 sizes"}}
    real = {"ids": [f"r{k}" for k in range(6)], "features": rng.normal(size=(6, 16)), "info": {"backbone": "inception"}}
    options = {"bootstrap": {"set_resamples": 5}, "kid": {"subsets": 3, "subset_size": 6}}
    results, _ = evaluate("variation", ["kid"], manifest, tmp_path, tmp_path, options, "cpu", features, real)
    assert results["kid"]["warnings"] == ["images/x: images of 2 sizes"]


def test_one_warning_line_names_every_value_it_concerns():
    long = pd.concat([_long("clip_i", 10, 5), _long("clip_t", 10, 5)])
    warnings = [line for line in tables.notes(long, "s", "t", "m") if line.startswith("Warning")]
    assert warnings == ["Warning, CLIP-I, CLIP-T: small n: 5 items, below the 20 it needs (a percentile "
                        "bootstrap over fewer items gives too narrow a 95% CI) (m)."]
