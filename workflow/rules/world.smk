# The mini world: its training set, the assembled mini SD pipeline, its validation table, datasets.
# Its models are artifacts (training.smk): world:<name> in a config.


rule world_train_set:
    output:
        f"{RESULTS}/world/train_set.npz",
    params:
        code=code_of("world_train_set.py"),
        n=WORLD.get("train_set", {}).get("n", 100000),
        seed=WORLD.get("train_set", {}).get("seed", 0),
    threads: 16  # capped at --cores
    log:
        f"{LOGS}/world_train_set.log",
    benchmark:
        f"{BENCH}/world_train_set.tsv"
    script:
        "../scripts/world_train_set.py"


rule assemble_mini_sd:
    # The mini Stable Diffusion as a standard StableDiffusionPipeline folder (what `world:mini_sd` names).
    input:
        [path for model in PIPELINES["mini_sd"] for path in SOURCES.artifact_inputs(model)],
    output:
        directory(f"{RESULTS}/pipelines/mini_sd"),
    params:
        code=code_of("assemble_mini_sd.py"),
        model_dirs={model: SOURCES.artifact_dir(model) for model in PIPELINES["mini_sd"]},
    log:
        f"{LOGS}/assemble_mini_sd.log",
    benchmark:
        f"{BENCH}/assemble_mini_sd.tsv"
    script:
        "../scripts/assemble_mini_sd.py"


def _validation_inputs(wc):
    inputs = {"models": [p for name in WORLD_ARTIFACTS for p in SOURCES.artifact_inputs(name)],
              "lpips_weights": "data/weights/lpips_alex.pt"}  # VAE reconstruction LPIPS
    if "variation" in TASKS and "oracle" in methods_for("variation"):
        inputs["real_a"] = f"{RESULTS}/features/variation/methods/oracle.inception.npz"
        inputs["real_b"] = real_features("variation")
    return inputs


rule world_validation:
    input:
        unpack(_validation_inputs),
    output:
        csv=report(f"{RESULTS}/tables/world_validation.csv", caption="../report/world_validation.rst",
                   category="Tables"),
        md=f"{RESULTS}/tables/world_validation.md",
    params:
        code=code_of("world_validation.py"),
        model_dirs={name: SOURCES.artifact_dir(name) for name in WORLD_ARTIFACTS},
        n=WORLD.get("validation", {}).get("n", 500),
        n_subjects=WORLD.get("validation", {}).get("n_subjects", 50),
        seed=WORLD.get("validation", {}).get("seed", 0),
        options=config["metrics"],
        device=DEVICE,
    threads: 1
    resources:
        gpu=gpu(),
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
        code=code_of("world_dataset.py"),
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
