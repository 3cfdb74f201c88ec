# The mini world's trained models. By default the shipped checkpoints under
# world.checkpoints are verified against their manifests; `--config retrain=true`
# retrains every model through the train rules below (on a GPU), and
# `--config retrain=vae,unet` retrains only the models named.

rule verify_checkpoint:
    input:
        f"{CHECKPOINTS}/{{model}}/manifest.json",
    output:
        f"{RESULTS}/checkpoints/{{model}}/verified.json",
    log:
        f"{LOGS}/verify_checkpoint/{{model}}.log",
    script:
        "../scripts/verify_checkpoint.py"


rule world_train_set:
    output:
        f"{RESULTS}/world/train_set.npz",
    params:
        n=WORLD.get("train", {}).get("n_train", 200000),
        seed=WORLD.get("train", {}).get("seed", 0),
    threads: workflow.cores
    log:
        f"{LOGS}/world_train_set.log",
    benchmark:
        f"{BENCH}/world_train_set.tsv"
    script:
        "../scripts/world_train_set.py"


rule train_world_model:
    input:
        unpack(_train_inputs),
    output:
        f"{RESULTS}/trained/{{model}}/manifest.json",
    params:
        training=lambda wc: _training(wc.model),
        architecture=lambda wc: WORLD.get("architecture", {}).get(wc.model, {}),
        evaluation=WORLD.get("unet_evaluation", {}),
        model_dirs={name: world_model_dir(name) for name in WORLD_MODELS},
        device=config.get("device", "auto"),
        config_sha256=config_hash(config),
    threads: workflow.cores
    resources:
        gpu=1,
    wildcard_constraints:
        model="|".join(WORLD_MODELS),
    log:
        f"{LOGS}/train_world_model/{{model}}.log",
    benchmark:
        f"{BENCH}/train_world_model/{{model}}.tsv"
    script:
        "../scripts/train_world_model.py"


rule assemble_mini_sd:
    # The mini Stable Diffusion as a standard StableDiffusionPipeline folder (what `pretrained: mini-sd` names).
    input:
        vae=world_model("vae"),
        unet=world_model("unet"),
        cond_clip=world_model("cond_clip"),
    output:
        directory(f"{RESULTS}/pipelines/mini_sd"),
    params:
        model_dirs={name: world_model_dir(name) for name in ("vae", "unet", "cond_clip")},
    log:
        f"{LOGS}/assemble_mini_sd.log",
    benchmark:
        f"{BENCH}/assemble_mini_sd.tsv"
    script:
        "../scripts/assemble_mini_sd.py"


rule world_validation:
    input:
        unpack(_validation_inputs),
    output:
        csv=report(f"{RESULTS}/tables/world_validation.csv", caption="../report/world_validation.rst",
                   category="Tables"),
        md=f"{RESULTS}/tables/world_validation.md",
    params:
        model_dirs={name: world_model_dir(name) for name in WORLD_MODELS},
        n=WORLD.get("validation", {}).get("n", 500),
        seed=WORLD.get("validation", {}).get("seed", 0),
        options=config["metrics"],
        device=config.get("device", "auto"),
    threads: workflow.cores
    log:
        f"{LOGS}/world_validation.log",
    benchmark:
        f"{BENCH}/world_validation.tsv"
    script:
        "../scripts/world_validation.py"


rule world_dataset:
    # On demand (not part of `all`): a split as numbered PNGs plus attributes.csv
    # (scene fields and caption), e.g. `snakemake --cores all results/mini/world/datasets/val`.
    output:
        directory(f"{RESULTS}/world/datasets/{{split}}"),
    params:
        n=WORLD.get("datasets", {}).get("n", 1000),
        seed=WORLD.get("datasets", {}).get("seed", 0),
        p_drop=lambda wc: WORLD.get("datasets", {}).get("train_p_drop", 0.3) if wc.split == "train" else 0.0,
    wildcard_constraints:
        split="train|val|test",
    log:
        f"{LOGS}/world_dataset/{{split}}.log",
    benchmark:
        f"{BENCH}/world_dataset/{{split}}.tsv"
    script:
        "../scripts/world_dataset.py"
