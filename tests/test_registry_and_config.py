import subprocess
import sys

import pytest

import methods
from methods.base import Method
from tests.workflow_utils import REPO, copy_code, smoke_config, snakemake, write_config


def test_listing_methods_imports_no_torch():
    code = "import sys, methods; found = methods.available_methods(); print(sorted(found)); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    names, torch_loaded = out.strip().splitlines()
    assert "oracle" in names and "augment" in names
    assert torch_loaded == "False"


def test_every_method_declares_tasks():
    for name, cls in methods.available_methods().items():
        assert cls.name == name
        assert cls.tasks and all(isinstance(task, str) for task in cls.tasks)


def test_register_method_rejects_bad_classes():
    with pytest.raises(TypeError):
        methods.register_method(object)

    class Nameless(Method):
        tasks = ("variation",)

    with pytest.raises(ValueError, match="must set `name`"):
        methods.register_method(Nameless)

    class Clash(Method):
        name = "oracle"
        tasks = ("variation",)

    with pytest.raises(ValueError, match="registered twice"):
        methods.register_method(Clash)


def test_unknown_method_fails_before_any_job(tmp_path):
    copy_code(tmp_path)
    config = smoke_config()
    config["methods"]["no_such_method"] = {}
    result = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, config))
    assert result.returncode != 0
    assert "methods.no_such_method" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c.update(colour="red"), "colour"),
        (lambda c: c["data"].update(n_items=-3), "n_items"),
        (lambda c: c["tasks"]["variation"].update(metrics=["fid", "psnr"]), "psnr"),
        (lambda c: c["metrics"]["clip"].update(convention="x1000"), "x1000"),
        (lambda c: c["sweeps"]["cfg"].update(method="sd_txt"), "sweeps.cfg.method"),
        (lambda c: c["sweeps"]["cfg"].update(task="edit"), "sweeps.cfg.task"),
        (lambda c: c.update(retrain="vae,no_such_model"), "retrain"),
        (lambda c: c.update(results=""), "results"),
        (lambda c: c["methods"]["sd_text"]["params"].update(guidance=3), "methods.sd_text.params.guidance"),
        (lambda c: c["methods"]["sd_text"]["params"].update(guidance_scale="high"),
         "methods.sd_text.params.guidance_scale: expected a number"),
        (lambda c: c["methods"]["sd_text"]["params"].update(pretrained="trained:no_such_adapter"),
         "methods.sd_text.params.pretrained: trained:no_such_adapter names no artifact that a rule makes"),
        (lambda c: c["methods"]["sd_text"]["params"].update(pretrained="world:no_such_model"),
         "methods.sd_text.params.pretrained: world:no_such_model"),
        (lambda c: c["methods"].update(fast={"method": "sd_fast"}), "methods.fast.method"),
        (lambda c: c.update(training={"vae": {"stepz": 3}}), "training.vae.stepz"),
        (lambda c: c["metrics"]["clip"].update(backbone="hf-clip:world:nothing"), "metrics.clip.backbone"),
        (lambda c: c["tasks"]["text2image"].update(headline="lpips"), "tasks.text2image.headline: 'lpips'"),
    ],
)
def test_bad_config_names_the_key(tmp_path, edit, key):
    copy_code(tmp_path)
    config = smoke_config()
    edit(config)
    result = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, config))
    assert result.returncode != 0
    assert key in result.stderr + result.stdout


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(colour="red"), "config key colour: unknown key (allowed here: baseline, "),
    (lambda c: c["tasks"]["variation"].update(shardz=2),
     "config key tasks.variation.shardz: unknown key (allowed here: data, headline, metrics, protocol, samples_per_item, shards)"),
    (lambda c: c.update(device="tpu"), "config key device: 'tpu' is not one of 'auto', 'cpu', 'cuda'"),
])
def test_a_schema_error_is_one_line_not_the_schema(tmp_path, edit, message):
    copy_code(tmp_path)
    config = smoke_config()
    edit(config)
    result = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, config))
    output = result.stderr + result.stdout
    assert result.returncode != 0 and message in output
    assert "Failed validating" not in output and len(output.splitlines()) < 40


def test_nested_config_values_on_the_command_line_are_read_as_yaml(tmp_path):
    """Snakemake reads `--config data={...}` values as strings; the Snakefile re-reads them as YAML."""
    copy_code(tmp_path)
    result = snakemake(tmp_path, "-n", "--config", 'data={"n_items": 3, "seed": 1}', 'world={"datasets": {"n": 4}}',
                       configfile=tmp_path / "config" / "smoke.yaml")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "is not of type" not in result.stderr + result.stdout


def test_method_asked_for_an_unsupported_task_fails(tmp_path):
    copy_code(tmp_path)
    config = smoke_config()
    config["methods"]["augment"]["tasks"] = ["edit"]
    result = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, config))
    assert result.returncode != 0
    assert "methods.augment.tasks" in result.stderr + result.stdout


def test_retrain_list_retrains_only_the_models_named(tmp_path):
    copy_code(tmp_path)
    result = snakemake(tmp_path, "-n", "results/smoke/pipelines/mini_sd", "--config", "retrain=unet",
                       configfile=tmp_path / "config" / "smoke.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = result.stdout
    assert "results/smoke/trained/unet/manifest.json" in jobs
    assert "results/smoke/checkpoints/vae/verified.json" in jobs  # the UNet trains on the shipped VAE
    assert "trained/vae" not in jobs and "trained/cond_clip" not in jobs


def test_configured_variants_run_one_class_under_several_names(tmp_path):
    copy_code(tmp_path)
    config = smoke_config()
    config["methods"]["sd_text_cfg9"] = {"method": "sd_text", "tasks": ["text2image"],
                                         "params": {**config["methods"]["sd_text"]["params"], "guidance_scale": 9.0}}
    result = snakemake(tmp_path, "-n", "results/smoke/tables/text2image.csv", configfile=write_config(tmp_path, config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "results/smoke/images/text2image/sd_text_cfg9/manifest.jsonl" in result.stdout


def test_results_key_moves_the_suite_folder_and_keeps_its_name(tmp_path):
    copy_code(tmp_path)
    result = snakemake(tmp_path, "-n", "elsewhere/smoke/tables/text2image.csv", "--config", "results=elsewhere",
                       configfile=tmp_path / "config" / "smoke.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "elsewhere/smoke/images/text2image/sd_text/manifest.jsonl" in result.stdout
    assert "results/smoke" not in result.stdout  # every job's files moved, the suite name (the seeds) kept


def test_default_suite_trains_nothing(tmp_path):
    """The shipped checkpoints cover every artifact the default suite uses: a run only verifies them."""
    copy_code(tmp_path)
    result = snakemake(tmp_path, "-n", configfile=tmp_path / "config" / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train_artifact" not in result.stdout and "verify_artifact" in result.stdout


@pytest.mark.parametrize("name", ["config.yaml", "photos.yaml", "smoke.yaml", "paper.yaml"])
def test_shipped_suites_validate_and_build_a_dag(tmp_path, name):
    copy_code(tmp_path)
    result = snakemake(tmp_path, "-n", configfile=tmp_path / "config" / name)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "provenance" in result.stdout


def test_paper_suite_downloads_its_data_with_checksums(tmp_path):
    """The whole paper DAG builds here (no network needed for a dry run): every archive is a download job."""
    from ipbench import paper_data

    copy_code(tmp_path)
    result = snakemake(tmp_path, "-n", configfile=tmp_path / "config" / "paper.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("val2017.zip", "annotations_trainval2017.zip", "val2014.zip", paper_data.DREAMBENCH_ARCHIVE):
        assert f"data/downloads/{name}" in result.stdout
    assert "results/paper/images/subject/oracle/manifest.jsonl" in result.stdout


def test_published_numbers_sit_beside_ours():
    import pandas as pd

    from ipbench import tables
    from ipbench.published import PUBLISHED

    records = [{"method": "oracle", "metrics": {
        "dino": {"value": 0.7, "ci95": [0.6, 0.8], "n": 4, "n_items": 2, "backbone": "b", "convention": "c"}}}]
    long = tables.long_table(records, {}, {("oracle", "dino"): 0.774})
    assert long.paper_value.tolist() == [0.774]
    wide = tables.with_published(tables.wide_table(long, ["oracle"]), long, PUBLISHED["dreambench"],
                                 {"oracle": "Real images"})
    assert wide.loc["oracle", "DINO ↑ (paper)"] == "0.774"
    assert wide.loc["paper: Textual Inversion (SD)", "DINO ↑ (paper)"] == "0.569"
    assert wide.loc["paper: DreamBooth (SD)", "DINO ↑"] == "–"
    assert isinstance(wide, pd.DataFrame)
