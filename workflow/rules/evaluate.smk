# Features are computed once per image set and cached as DAG outputs;
# metrics read them instead of re-running Inception.


rule reference_features:
    input:
        f"{RESULTS}/data/{{task}}",
    output:
        f"{RESULTS}/features/{{task}}/reference_set.inception.npz",
    params:
        images=lambda wc, input: f"{input[0]}/reference",
        options=_feature_params(),
    threads: workflow.cores
    resources:
        gpu=int(config.get("device") == "cuda"),
    log:
        f"{LOGS}/features/{{task}}/reference_set.log",
    benchmark:
        f"{BENCH}/features/{{task}}/reference_set.tsv"
    script:
        "../scripts/inception_features.py"


rule method_features:
    input:
        f"{RESULTS}/images/{{task}}/{{method}}/manifest.jsonl",
    output:
        f"{RESULTS}/features/{{task}}/methods/{{method}}.inception.npz",
    params:
        images=lambda wc, input: str(Path(input[0]).parent),
        options=_feature_params(),
    threads: workflow.cores
    resources:
        gpu=int(config.get("device") == "cuda"),
    log:
        f"{LOGS}/features/{{task}}/{{method}}.log",
    benchmark:
        f"{BENCH}/features/{{task}}/{{method}}.tsv"
    script:
        "../scripts/inception_features.py"


rule evaluate:
    input:
        unpack(_evaluate_inputs),
    output:
        metrics=f"{RESULTS}/metrics/{{task}}/{{method}}.json",
        per_item=f"{RESULTS}/metrics/{{task}}/{{method}}.items.csv",
    params:
        metrics=lambda wc: config["tasks"][wc.task]["metrics"],
        options=config["metrics"],
        clip_backbone=clip_backbone_spec(),
        shape_cnn_dir=world_model_dir("shape_cnn") if "world" in config else None,
        device=config.get("device", "auto"),
    threads: workflow.cores
    log:
        f"{LOGS}/evaluate/{{task}}/{{method}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{task}}/{{method}}.tsv"
    script:
        "../scripts/evaluate.py"
