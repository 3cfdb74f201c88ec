"""benchmarks/scale_out.py: its dry run end to end, the byte-for-byte comparison and the efficiency."""
import argparse
import json
import shutil
import subprocess
import sys

import pytest

from ipbench.io import atomic_write_text, write_jsonl
from tests.workflow_utils import REPO, copy_code

sys.path.insert(0, str(REPO / "benchmarks"))

import scale_out  # noqa: E402

SUITE = "scale_out"


@pytest.mark.slow
def test_dry_run_compares_equal_and_reports(tmp_path):
    """The dry run (4 captions, --cores 1 against --cores 2) in a scratch copy of the code."""
    workdir = copy_code(tmp_path)
    (workdir / "benchmarks").mkdir()
    for script in (REPO / "benchmarks").glob("*.py"):
        shutil.copy2(script, workdir / "benchmarks")
    command = [sys.executable, "benchmarks/scale_out.py", "--dry", "--items", "4", "--out", "out"]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((workdir / "out" / "scale_out_dry.json").read_text())
    # 2 shard manifests, the merged one and 3 tables
    assert report["comparison"] == {"reference": "cores1", "runs": ["cores2"], "files": 6, "identical": True,
                                    "first_difference": None}
    for label, cores in (("cores1", "1"), ("cores2", "2")):
        run = report["runs"][label]
        assert run["flags"] == f"--cores {cores} --resources gpu={cores}"
        assert run["images"] == 4 and run["generate_jobs"] == 2
        assert set(run["phases"]) == {"generate", "evaluate"}
        assert run["jobs_per_card"] == {}  # no GPU: no job pinned to a card
        assert run["img_s"] == run["images"] / run["generate_span_s"]
    scaling = report["efficiency"]
    assert scaling["value"] == scaling["img_s_n"] / (2 * scaling["img_s_1"])
    assert report["config"]["suite"] == SUITE
    assert report["config"]["methods"]["sd_text"]["params"]["pretrained"].endswith("standin-tiny-32px/sd")
    markdown = (workdir / "out" / "scale_out_dry.md").read_text()
    assert "RANDOM WEIGHTS" in markdown and "Identical: 6 files" in markdown and "| cores2 |" in markdown


def _suite_folder(root, cards=()):
    """A suite folder as a run leaves it: two shard manifests, the merged one, two tables, the shards'
    benchmark: files and logs (pinned to ``cards``, if any)."""
    images = root / "images" / "text2image" / "sd_text"
    benchmarks, logs = (root / kind / "generate_shard" / "text2image" / "sd_text"
                        for kind in ("benchmarks", "logs"))
    rows = [{"item_id": f"caption-{k:05d}", "sample_index": 0, "sha256": f"{k:064x}",
             "path": f"shard-{k % 2:03d}/caption-{k:05d}_s00.png"} for k in range(4)]
    for shard in range(2):
        write_jsonl(images / f"shard-{shard:03d}" / "manifest.jsonl", rows[shard::2])
        atomic_write_text(benchmarks / f"{shard:03d}.tsv", f"s\th:m:s\n{3.5 + shard}\t0:00:03\n")
        pinned = f"INFO GPU job pinned to CUDA_VISIBLE_DEVICES={cards[shard]}\n" if cards else ""
        atomic_write_text(logs / f"{shard:03d}.log", f"{pinned}INFO 2 images\n")
    write_jsonl(images / "manifest.jsonl", rows)
    atomic_write_text(root / "tables" / "text2image.csv", "method,metric,value\nsd_text,clip_t,0.25\n")
    atomic_write_text(root / "tables" / "text2image.md",
                      "| method | CLIP-T |\n|---|---|\n| sd_text | 0.25 |\n")
    return root


@pytest.fixture
def pair(tmp_path):
    return _suite_folder(tmp_path / "gpu1"), _suite_folder(tmp_path / "gpu2")


def test_identical_folders_compare_equal(pair):
    assert scale_out.compared_files(pair[0]) == [
        "images/text2image/sd_text/manifest.jsonl", "images/text2image/sd_text/shard-000/manifest.jsonl",
        "images/text2image/sd_text/shard-001/manifest.jsonl", "tables/text2image.csv", "tables/text2image.md"]
    assert scale_out.first_difference(*pair) is None


def test_a_tampered_manifest_line_names_the_file(pair):
    reference, other = pair
    manifest = other / "images" / "text2image" / "sd_text" / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    lines[1] = json.dumps({**json.loads(lines[1]), "sha256": "0" * 64}, sort_keys=True) + "\n"
    manifest.write_text("".join(lines))
    assert scale_out.first_difference(reference, other) == (
        f"{manifest}: differs from {reference / manifest.relative_to(other)} (first at line 2)")


def test_a_tampered_or_missing_table_names_the_file(pair):
    reference, other = pair
    table = other / "tables" / "text2image.md"
    table.write_text(table.read_text() + "extra\n")
    assert scale_out.first_difference(reference, other) == (
        f"{table}: differs from {reference / 'tables' / 'text2image.md'} (first at line 4)")
    (other / "tables" / "text2image.csv").unlink()
    assert scale_out.first_difference(reference, other) == (
        f"{other / 'tables' / 'text2image.csv'}: missing (it is in {reference})")
    assert scale_out.first_difference(other, reference) == (
        f"{reference / 'tables' / 'text2image.csv'}: not in {other}")


def test_measure_counts_images_job_seconds_and_cards(tmp_path):
    """On GPUs, ipbench.jobs.start_job logs each job's card; the report counts jobs per card."""
    measured = scale_out.measure(_suite_folder(tmp_path / "gpu2", cards=("GPU-aaaa", "GPU-bbbb")))
    assert measured["jobs_per_card"] == {"GPU-aaaa": 1, "GPU-bbbb": 1}
    assert measured["images"] == 4 and measured["images_per_set"] == {"text2image/sd_text": 4}
    assert measured["generate_jobs"] == 2 and measured["generate_job_s"] == 8.0
    assert measured["generate_span_s"] >= 4.5  # the longer job at least (the files' times: when each ended)
    with pytest.raises(FileNotFoundError, match="generate_shard: no benchmark file"):
        scale_out.measure(tmp_path / "empty")


def test_nothing_to_compare_is_a_difference(tmp_path):
    expected = f"{tmp_path}: no manifest.jsonl and no table to compare"
    assert scale_out.first_difference(tmp_path, tmp_path) == expected


def test_efficiency_arithmetic():
    assert scale_out.efficiency(3.0, 5.4, 2) == pytest.approx(0.9)
    assert scale_out.efficiency(3.0, 10.2, 4) == pytest.approx(0.85)
    assert scale_out.efficiency(2.0, 2.0, 1) == 1.0
    with pytest.raises(ValueError, match="n=0"):
        scale_out.efficiency(1.0, 1.0, 0)
    with pytest.raises(ValueError, match="rate=0"):
        scale_out.efficiency(0, 1.0, 2)


def test_gpu_runs_and_their_snakemake_commands(tmp_path):
    """What a GPU session runs: gpu=1, then gpu=N, then no limit with a slot per job on each card."""
    args = argparse.Namespace(dry=False, gpus=4, compare_unlimited=True)
    runs = scale_out.planned_runs(args)
    assert [run["label"] for run in runs] == ["gpu1", "gpu4", "unlimited"] and runs[1]["n"] == 4
    assert [scale_out.run_flags(run) for run in runs] == [["--cores", "all", "--resources", "gpu=1"],
                                                          ["--cores", "all", "--resources", "gpu=4"],
                                                          ["--cores", "all"]]
    assert int(runs[2]["env"]["IPBENCH_JOBS_PER_GPU"]) >= 1
    config_file, root = tmp_path / "suite.yaml", tmp_path / "gpu4"
    command = scale_out.snakemake_command(args, runs[1], config_file, root, ["T"], ["merge_shards"])
    assert command[-6:] == ["--until", "merge_shards", "--configfile", str(config_file), "--config",
                            f"results={root}"]
    one_card = scale_out.planned_runs(argparse.Namespace(dry=False, gpus=1, compare_unlimited=True))
    assert [run["label"] for run in one_card] == ["gpu1", "unlimited"]
