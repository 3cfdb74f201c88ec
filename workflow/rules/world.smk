# The mini world's trained models. By default the shipped checkpoints under
# world.checkpoints are verified against their manifests; `--config retrain=true`
# retrains every model through the train rules below (on a GPU).

from ipbench.provenance import config_hash

WORLD_MODELS = ("shape_cnn", "judge_clip", "cond_clip")
RETRAIN = str(config.get("retrain", False)).lower() == "true"
WORLD = config.get("world", {})
CHECKPOINTS = WORLD.get("checkpoints", "data/checkpoints")


def world_model(name):
    """The file a consumer of model ``name`` depends on; its folder holds the model."""
    if RETRAIN:
        return f"{RESULTS}/trained/{name}/manifest.json"
    return f"{RESULTS}/checkpoints/{name}/verified.json"


def world_model_dir(name):
    return f"{RESULTS}/trained/{name}" if RETRAIN else f"{CHECKPOINTS}/{name}"


def _training(name):
    train = WORLD.get("train", {})
    return {"seed": train.get("seed", 0), **train.get(name, {})}


rule verify_checkpoint:
    input:
        CHECKPOINTS + "/{model}/manifest.json",
    output:
        RESULTS + "/checkpoints/{model}/verified.json",
    log:
        LOGS + "/verify_checkpoint/{model}.log",
    script:
        "../scripts/verify_checkpoint.py"


rule world_train_set:
    output:
        RESULTS + "/world/train_set.npz",
    params:
        n=WORLD.get("train", {}).get("n_train", 200000),
        seed=WORLD.get("train", {}).get("seed", 0),
    threads: workflow.cores
    log:
        LOGS + "/world_train_set.log",
    benchmark:
        BENCH + "/world_train_set.tsv"
    script:
        "../scripts/world_train_set.py"


rule train_world_model:
    input:
        RESULTS + "/world/train_set.npz",
    output:
        RESULTS + "/trained/{model}/manifest.json",
    params:
        training=lambda wc: _training(wc.model),
        device=config.get("device", "auto"),
        config_sha256=config_hash(config),
    threads: workflow.cores
    resources:
        gpu=1,
    wildcard_constraints:
        model="|".join(WORLD_MODELS),
    log:
        LOGS + "/train_world_model/{model}.log",
    benchmark:
        BENCH + "/train_world_model/{model}.tsv"
    script:
        "../scripts/train_world_model.py"


def _validation_inputs(wc):
    inputs = {name: world_model(name) for name in WORLD_MODELS}
    if "variation" in TASKS and "reference" in methods_for("variation"):
        inputs["real_a"] = f"{RESULTS}/features/variation/methods/reference.inception.npz"
        inputs["real_b"] = f"{RESULTS}/features/variation/reference_set.inception.npz"
    return inputs


rule world_validation:
    input:
        unpack(_validation_inputs),
    output:
        csv=report(RESULTS + "/tables/world_validation.csv", caption="../report/world_validation.rst",
                   category="Tables"),
        md=RESULTS + "/tables/world_validation.md",
    params:
        model_dirs={name: world_model_dir(name) for name in WORLD_MODELS},
        n=WORLD.get("validation", {}).get("n", 500),
        seed=WORLD.get("validation", {}).get("seed", 0),
        options=config["metrics"],
        device=config.get("device", "auto"),
    threads: workflow.cores
    log:
        LOGS + "/world_validation.log",
    benchmark:
        BENCH + "/world_validation.tsv"
    script:
        "../scripts/world_validation.py"
