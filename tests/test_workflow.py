"""The whole DAG on the smoke suite, in a scratch copy of the code."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from ipbench.io import read_jsonl
from tests import browser
from tests.workflow_utils import REPO, copy_code, smoke_config, snakemake, write_config

pytestmark = pytest.mark.slow
RESULTS = "results/smoke"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = copy_code(tmp_path_factory.mktemp("dag"))
    result = snakemake(workdir, configfile=workdir / "config" / "smoke.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def _table(workdir):
    return pd.read_csv(workdir / RESULTS / "tables" / "variation.csv")


def test_outputs_exist(run):
    results = run / RESULTS
    for name in ("tables/variation.csv", "tables/variation.md", "tables/variation.tex", "tables/subject.md",
                 "tables/world_validation.md", "README.md", "provenance.json", "tables/text2image.md",
                 "tables/sweep_cfg.csv"):
        assert (results / name).stat().st_size > 0, name
    stems = [f"{task}_{kind}" for task in ("variation", "subject", "text2image") for kind in ("grid", "bars")]
    for stem in stems + ["variation_tradeoff", "subject_tradeoff", "sweep_cfg", "summary"]:
        assert (results / "paper" / f"{stem}.pdf").read_bytes().startswith(b"%PDF"), stem
        assert (results / "paper" / f"{stem}.png").stat().st_size > 0, stem
    assert not (results / "paper" / "text2image_tradeoff.pdf").exists()  # text2image has no CLIP-I
    for task in ("variation", "subject", "text2image"):
        tex = (results / "paper" / f"{task}.tex").read_text()
        assert r"\toprule" in tex and "Protocol: n = " in tex and "per item;" in tex
    # variation and text2image draw the same real renders: featurized once, under the first task by name
    assert (results / "features" / "text2image" / "real_set.inception.npz").exists()
    assert not (results / "features" / "variation" / "real_set.inception.npz").exists()
    # one log per job
    assert len(list((results / "logs").rglob("*.log"))) >= 10


def test_table_values(run):
    table = _table(run).set_index(["method", "metric"])
    assert set(table.index.get_level_values("method")) == {"oracle", "augment"}
    # the oracle renders the prompt's own scene
    assert table.loc[("oracle", "lpips"), "value"] == 0.0
    assert table.loc[("augment", "lpips"), "value"] > 0.01
    for metric in ("fid", "kid", "lpips"):
        row = table.loc[("augment", metric)]
        assert row.ci95_low <= row.value <= row.ci95_high
        assert "vs_baseline_p" in row and 0 < row.vs_baseline_p <= 1
        assert row.backbone and row.convention
    markdown = (run / RESULTS / "tables" / "variation.md").read_text()
    assert "inception-v3-pool3" in markdown and "lpips-v0.1-alex" in markdown


def test_oracle_rows_are_perfect_and_augment_is_not(run):
    for task in ("variation", "subject"):
        table = pd.read_csv(run / RESULTS / "tables" / f"{task}.csv").set_index(["method", "metric"])
        assert table.loc[("oracle", "all_correct"), "value"] == 1.0
        assert table.loc[("oracle", "subject_iou"), "value"] > 0.9
        assert table.loc[("augment", "all_correct"), "value"] < 1.0
        assert "judge_clip" in table.loc[("oracle", "clip_t"), "backbone"]


def test_text2image_rows_and_cfg_sweep(run):
    table = pd.read_csv(run / RESULTS / "tables" / "text2image.csv").set_index(["method", "metric"])
    assert set(table.index.get_level_values("method")) == {"oracle", "sd_text"}
    assert table.loc[("oracle", "all_correct"), "value"] == 1.0  # oracle renders of the captions
    for metric in ("fid", "kid", "clip_t", "acc_colour", "all_correct"):
        assert ("sd_text", metric) in table.index
    sweep = pd.read_csv(run / RESULTS / "tables" / "sweep_cfg.csv")
    assert sorted(sweep.param_value.unique()) == [1.0, 5.0]
    # the configured value reuses the main image set; the other value is its own set from the same method
    assert set(sweep.image_set) == {"sd_text", "sd_text_cfg1p0"}
    kid = sweep[sweep.metric == "kid"].set_index("param_value").value
    assert kid[5.0] == table.loc[("sd_text", "kid"), "value"]
    prepared = json.loads((run / RESULTS / "models" / "sd_text_cfg1p0" / "prepared.json").read_text())
    assert prepared["method_class"] == "sd_text" and prepared["params"]["guidance_scale"] == 1.0
    assert prepared["params"]["pretrained"] == f"{RESULTS}/pipelines/mini_sd"


def test_world_validation_table(run):
    table = pd.read_csv(run / RESULTS / "tables" / "world_validation.csv")
    analyzer = table[table.section == "analyzer"]
    assert set(analyzer.condition) == {"none", "blur", "noise"}
    assert (analyzer.value > 0.9).all()
    assert {"judge_clip", "cond_clip"} <= set(table.model)
    assert "FID real vs real" in set(table.measure)
    vae = table[(table.section == "mini SD") & table.measure.str.endswith("accuracy on reconstructions")]
    assert len(vae) >= 5 and (vae.value > 0.8).all()


def test_world_split_datasets_on_demand(run):
    result = snakemake(run, f"{RESULTS}/world/datasets/val", configfile=run / "config" / "smoke.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    folder = run / RESULTS / "world" / "datasets" / "val"
    table = pd.read_csv(folder / "attributes.csv")
    assert len(table) == 8 and set(table.split) == {"val"}
    assert all((folder / name).exists() for name in table.file)
    assert table.caption.str.len().min() > 0


def test_paper_target_redraws_from_cached_tables_only(run):
    """A styling edit of the figure code reruns the paper figures and nothing that computes a number."""
    code = run / "ipbench" / "figures.py"
    original = code.read_text()
    try:
        code.write_text(original.replace('"font.size": 8', '"font.size": 9'))
        jobs = _jobs_to_run(run)
        assert jobs and set(jobs) <= {"paper_grid", "paper_bars", "paper_tradeoff", "paper_sweep", "paper_summary",
                                      "paper", "all"}, jobs
    finally:
        code.write_text(original)
    assert _jobs_to_run(run) == {}


def test_report_renders_in_chromium(run):
    """`snakemake --report` with no --cores; then Chromium loads every embedded figure and every table."""
    if browser.chromium() is None:
        pytest.skip("chromium is not installed here (Debian: apt-get install -y chromium; .ci/run installs it)")
    report = run / RESULTS / "report.html"
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(run / "Snakefile"), "--directory",
                             str(run), "--report", str(report), "--configfile", str(run / "config" / "smoke.yaml")],
                            capture_output=True, text=True, cwd=run, env={**os.environ, "PYTHONPATH": str(run)})
    assert result.returncode == 0, result.stderr[-4000:]
    seen = browser.probe(report)
    paper = run / RESULTS / "paper"
    expected = {str(p.relative_to(run)) for p in [*paper.glob("*.png"), *paper.glob("*.html")]}
    assert expected <= set(seen["results"]) and len(expected) == 13, sorted(seen["results"])
    for path, record in seen["results"].items():
        if record["mime"].startswith("image/"):
            assert record["width"] > 0 and "error" not in record, (path, record)
        if path in expected:
            assert "Protocol:" in record["caption"], (path, record["caption"])
    for task in ("variation", "subject", "text2image"):
        record = seen["results"][f"{RESULTS}/paper/{task}.html"]
        methods = set(pd.read_csv(run / RESULTS / "tables" / f"{task}.csv").method)
        assert record["tables"] == 1 and set(record["rows"]) == methods, record
    assert seen["page_images"] and all(width > 0 for width in seen["page_images"])
    assert "Figures" in seen["app"] and "Tables" in seen["app"], seen["app"][:2000]


def test_table_fid_equals_the_command_line(run):
    images = run / RESULTS / "images" / "variation" / "augment"
    real = run / RESULTS / "data" / "variation" / "real"
    out = subprocess.run([sys.executable, "-m", "metrics", "fid", str(images), str(real)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    # rel 1e-6, not exact: the DAG's feature job runs one CPU thread and the command line all cores, and
    # convolutions summed in another order differ in the last bits of the features.
    assert json.loads(out)["value"] == pytest.approx(
        _table(run).set_index(["method", "metric"]).loc[("augment", "fid"), "value"], rel=1e-6)


def test_manifest_rows(run):
    rows = read_jsonl(run / RESULTS / "images" / "variation" / "augment" / "manifest.jsonl")
    assert len(rows) == 4 * 2
    assert {"item_id", "sample_index", "seed", "condition", "path", "sha256"} <= rows[0].keys()
    assert {row["path"].split("/")[0] for row in rows} == {"shard-000", "shard-001"}


def test_provenance(run):
    record = json.loads((run / RESULTS / "provenance.json").read_text())
    assert record["weights"]["inception"]["sha1"] == "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
    assert re.fullmatch(r"[0-9a-f]{64}", record["config_sha256"])
    assert record["packages"]["torch"] and record["device"]["platform"]
    assert set(record["methods"]) == {"oracle", "augment", "sd_text"}
    digests = record["code_digests"]["text2image"]
    assert set(digests["generate_shard"]) == {"oracle", "sd_text"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", digests[kind]) for kind in ("table", "evaluate", "features"))
    assert digests["generate_shard"]["oracle"] != digests["generate_shard"]["sd_text"]  # each method's own module
    sd_text = json.loads((run / RESULTS / "models" / "sd_text" / "prepared.json").read_text())
    unet_weights = [name for name in sd_text["weights_sha256"] if name.startswith("unet/")]
    assert unet_weights and all(re.fullmatch(r"[0-9a-f]{64}", sd_text["weights_sha256"][name]) for name in unet_weights)


def test_rerun_has_nothing_to_do(run):
    result = snakemake(run, "-n", configfile=run / "config" / "smoke.yaml")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_run_killed_mid_generation_resumes_to_the_same_tables(run):
    """SIGKILL the whole run once the first shard of an image set is written, unlock, rerun with
    --rerun-incomplete: the tables equal those of the uninterrupted run, and no temporary is left."""
    images = run / RESULTS / "images" / "variation" / "augment"
    before = {name: (run / RESULTS / name).read_bytes()
              for name in ("tables/variation.csv", "images/variation/augment/manifest.jsonl")}
    # The image set and what was made from it: Snakemake remakes a missing intermediate only for a missing output.
    shutil.rmtree(images)
    for made in ("features/variation/methods/augment.inception.npz", "metrics/variation/augment.json",
                 "metrics/variation/augment.items.csv", "tables/variation.csv"):
        (run / RESULTS / made).unlink()
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "config/smoke.yaml"]
    env = {**os.environ, "PYTHONPATH": str(run)}
    job = subprocess.Popen(command, cwd=run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        # One core: the shards run one after the other, so the second is unwritten when the first appears.
        while not list(images.glob("shard-*")):
            assert job.poll() is None, "the run ended before writing a shard"
            time.sleep(0.2)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    assert not (images / "manifest.jsonl").exists()
    assert snakemake(run, "--unlock", configfile=run / "config" / "smoke.yaml").returncode == 0
    resumed = snakemake(run, "--rerun-incomplete", configfile=run / "config" / "smoke.yaml")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    for name, data in before.items():
        assert (run / RESULTS / name).read_bytes() == data, name
    assert not list(images.glob(".*.tmp")), "a killed job's temporary was left behind"


def _jobs_to_run(workdir) -> dict[str, int]:
    """{rule: job count} of a dry run on the smoke suite (Snakemake's job-stats table)."""
    result = snakemake(workdir, "-n", configfile=workdir / "config" / "smoke.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    table = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal", result.stdout + result.stderr, re.S)
    return {} if table is None else {line.split()[0]: int(line.split()[1]) for line in table.group(1).splitlines()}


def test_results_follow_the_code_they_import(run):
    """Snakemake tracks a job's script; the code digest in its params makes an edit of an imported module
    rerun exactly the jobs that can reach it (here FID's module: features, evaluations, tables)."""
    fid = run / "metrics" / "fid.py"
    original = fid.read_text()
    try:
        fid.write_text(original.replace("def fid_from_features(", "def _unused():\n    pass\n\n\ndef fid_from_features(", 1))
        jobs = _jobs_to_run(run)
    finally:
        fid.write_text(original)
    assert {"evaluate", "table"} <= set(jobs), jobs
    assert not {"generate_shard", "merge_shards", "build_task_data", "prepare_method"} & set(jobs), jobs
    assert _jobs_to_run(run) == {}  # the original code again: nothing to do


def _worked_example(name: str) -> str:
    text = (REPO / "docs" / "adding-a-method.md").read_text()
    return re.search(rf"```python\n# methods/{name}.py\n(.*?)```", text, re.S).group(1)


def test_adding_a_method_is_one_file_and_one_config_entry(run):
    """Both worked examples of docs/adding-a-method.md, through the DAG: a no-weights method, and a
    diffusers method whose LoRA weights the DAG trains first (a few steps on CPU here)."""
    for name in ("gaussian_blur", "sd_lora"):
        (run / "methods" / f"{name}.py").write_text(_worked_example(name))
    config = smoke_config()
    config["methods"]["gaussian_blur"] = {"params": {"max_radius": 3.0}}
    config["methods"]["sd_lora"] = {"params": {**config["methods"]["sd_text"]["params"], "lora": "trained:sd_lora"},
                                    "batch_size": 2}
    config["world"]["train_set"] = {"n": 32, "seed": 0}
    config["training"] = {"sd_lora": {"steps": 2, "batch_size": 4}}
    result = snakemake(run, configfile=write_config(run, config))
    assert result.returncode == 0, result.stderr[-4000:]
    log = result.stdout + result.stderr
    # only the new methods' jobs (and the LoRA's training) and what summarises them ran again
    assert "rule real_features" not in log and "localrule real_features" not in log
    assert "rule train_artifact" in log
    table = _table(run).set_index(["method", "metric"])
    assert table.loc[("gaussian_blur", "lpips"), "value"] > 0.01
    assert "gaussian_blur" in (run / RESULTS / "tables" / "variation.md").read_text()
    lora = run / RESULTS / "trained" / "sd_lora"
    manifest = json.loads((lora / "manifest.json").read_text())
    assert manifest["files"]["pytorch_lora_weights.safetensors"] and manifest["rule"] == "train_artifact"
    assert manifest["settings"]["steps"] == 2 and (lora / "training_curves.png").stat().st_size > 0
    text2image = pd.read_csv(run / RESULTS / "tables" / "text2image.csv").set_index(["method", "metric"])
    assert ("sd_lora", "acc_colour") in text2image.index
    prepared = json.loads((run / RESULTS / "models" / "sd_lora" / "prepared.json").read_text())
    assert prepared["params"]["lora"] == f"{RESULTS}/trained/sd_lora"


PER_SUBJECT_METHOD = '''
"""A per-subject artifact: each subject's mean reference colour, trained as its own job."""
import hashlib
import json

import numpy as np

from ipbench.params import Param
from ipbench.training.registry import Artifact, register_artifact
from methods import register_method
from methods.base import Method
from metrics.images import load_rgb

register_artifact(Artifact("mean_colour", "methods.mean_colour:train", inputs={"data": "task:subject"},
                           per_subject=True, uses_gpu=False, defaults={"seed": 0}))


def train(out_dir, inputs, settings, device, subject=None, threads=1):
    from ipbench.io import read_jsonl

    items = [i for i in read_jsonl(f"{inputs['data']}/items.jsonl") if i["condition"]["subject"] == subject]
    refs = [load_rgb(f"{inputs['data']}/{path}").array for path in items[0]["condition"]["images"]]
    colour = np.mean([ref.reshape(-1, 3).mean(0) for ref in refs], axis=0)
    (out_dir / "colour.json").write_text(json.dumps(colour.tolist()))
    return {"history": [{"step": 0, "loss": 0.0}], "validation": {"n_refs": len(refs)}}


@register_method
class MeanColour(Method):
    name = "mean_colour"
    tasks = ("subject",)
    group_by = "subject"
    params = {"colours": Param(type=str, model=True)}

    def generate(self, requests, data_dir):
        subjects = {r.condition["subject"] for r in requests}
        assert len(subjects) == 1, subjects  # batches never mix subjects
        colour = json.loads(open(f"{self.settings['colours']}/subjects/{subjects.pop()}/colour.json").read())
        return [np.full((64, 64, 3), np.round(colour), np.uint8) for _ in requests]
'''


def test_per_subject_artifacts_train_one_job_per_subject(run):
    (run / "methods" / "mean_colour.py").write_text(PER_SUBJECT_METHOD)
    config = smoke_config()
    config["methods"]["mean_colour"] = {"params": {"colours": "trained:mean_colour"}, "batch_size": 2}
    config["tasks"]["subject"]["shards"] = 2
    result = snakemake(run, f"{RESULTS}/tables/subject.csv", configfile=write_config(run, config, "subjects.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    trained = sorted(p.parent.name for p in (run / RESULTS / "trained" / "mean_colour" / "subjects").glob("*/manifest.json"))
    assert trained == ["subject00", "subject01"]
    manifest = json.loads((run / RESULTS / "trained" / "mean_colour" / "subjects" / "subject01" / "manifest.json").read_text())
    assert manifest["subject"] == "subject01" and manifest["validation"] == {"n_refs": 2}
    # each shard holds whole subjects
    rows = read_jsonl(run / RESULTS / "images" / "subject" / "mean_colour" / "manifest.jsonl")
    shard_of = {}
    for row in rows:
        shard_of.setdefault(row["condition"]["subject"], set()).add(row["path"].split("/")[0])
    assert all(len(shards) == 1 for shards in shard_of.values()) and len(set().union(*shard_of.values())) == 2
    table = pd.read_csv(run / RESULTS / "tables" / "subject.csv").set_index(["method", "metric"])
    assert ("mean_colour", "clip_i") in table.index


def test_a_failing_method_leaves_no_partial_output(run):
    (run / "methods" / "broken.py").write_text(
        "from methods import register_method\nfrom methods.base import Method\n\n\n"
        "@register_method\nclass Broken(Method):\n    name = 'broken'\n    tasks = ('variation',)\n\n"
        "    def generate(self, requests, data_dir):\n        raise RuntimeError('out of memory (simulated)')\n")
    config = smoke_config()
    config["methods"]["broken"] = {"batch_size": 2}  # both shards get work, and both fail
    before = (run / RESULTS / "tables" / "variation.csv").read_bytes()
    result = snakemake(run, "--keep-going", configfile=write_config(run, config, "broken.yaml"))
    assert result.returncode != 0
    broken = run / RESULTS / "images" / "variation" / "broken"
    assert not list(broken.glob("shard-*")) and not (broken / "manifest.jsonl").exists()
    assert (run / RESULTS / "tables" / "variation.csv").read_bytes() == before
    assert "out of memory (simulated)" in "".join(
        p.read_text() for p in (run / RESULTS / "logs" / "generate_shard" / "variation" / "broken").glob("*.log"))



def test_a_checkpoint_corrupted_after_the_run_stops_the_next_job_that_loads_it(run):
    """verify_artifact ran long ago; the evaluation job checks the shape CNN it loads again (size and mtime
    against the hash cache, then the sha256), and the console says which file and how to recover."""
    weights = run / "data" / "checkpoints" / "shape_cnn" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, new mtime
    weights.write_bytes(bytes(data))
    target = f"{RESULTS}/metrics/variation/oracle.json"
    before = (run / RESULTS / "tables" / "variation.csv").read_bytes()
    result = snakemake(run, target, "--forcerun", "evaluate", configfile=run / "config" / "smoke.yaml")
    assert result.returncode != 0
    cause = next(line for line in result.stderr.splitlines() if line.startswith("  evaluate: "))
    assert "data/checkpoints/shape_cnn/model.safetensors: sha256" in cause
    assert "git checkout -- data/checkpoints/shape_cnn/model.safetensors" in cause and "retrain=shape_cnn" in cause
    assert (run / RESULTS / "tables" / "variation.csv").read_bytes() == before
