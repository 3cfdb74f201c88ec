# Features are computed once per image set and cached as DAG outputs;
# metrics read them instead of re-running Inception.


def _feature_params():
    return {"device": config.get("device", "auto"), **config["metrics"].get("inception", {})}


rule reference_features:
    input:
        RESULTS + "/data/{task}",
    output:
        RESULTS + "/features/{task}/reference_set.inception.npz",
    params:
        images=lambda wc, input: f"{input[0]}/reference",
        options=_feature_params(),
    threads: workflow.cores
    resources:
        gpu=int(config.get("device") == "cuda"),
    log:
        LOGS + "/features/{task}/reference_set.log",
    benchmark:
        BENCH + "/features/{task}/reference_set.tsv"
    script:
        "../scripts/inception_features.py"


rule method_features:
    input:
        RESULTS + "/images/{task}/{method}/manifest.jsonl",
    output:
        RESULTS + "/features/{task}/methods/{method}.inception.npz",
    params:
        images=lambda wc, input: str(Path(input[0]).parent),
        options=_feature_params(),
    threads: workflow.cores
    resources:
        gpu=int(config.get("device") == "cuda"),
    log:
        LOGS + "/features/{task}/{method}.log",
    benchmark:
        BENCH + "/features/{task}/{method}.tsv"
    script:
        "../scripts/inception_features.py"


def _evaluate_inputs(wc):
    inputs = {
        "data": f"{RESULTS}/data/{wc.task}",
        "manifest": f"{RESULTS}/images/{wc.task}/{wc.method}/manifest.jsonl",
    }
    if metric_enabled(wc.task, "fid") or metric_enabled(wc.task, "kid"):
        inputs["features"] = f"{RESULTS}/features/{wc.task}/methods/{wc.method}.inception.npz"
        inputs["reference_features"] = f"{RESULTS}/features/{wc.task}/reference_set.inception.npz"
    if metric_enabled(wc.task, "lpips"):
        inputs["lpips_weights"] = lpips_weights()
    if metric_enabled(wc.task, "attributes") and "world" in config:
        inputs["shape_cnn"] = world_model("shape_cnn")
    if clip_backbone() == "mini-judge":
        inputs["judge_clip"] = world_model("judge_clip")
    return inputs


def clip_backbone():
    return config["metrics"].get("clip", {}).get("backbone")


def clip_backbone_spec():
    """The backbone spec the metric engine loads; "mini-judge" is the mini world's judge CLIP."""
    spec = clip_backbone()
    return f"hf-clip:{world_model_dir('judge_clip')}" if spec == "mini-judge" else spec


rule evaluate:
    input:
        unpack(_evaluate_inputs),
    output:
        metrics=RESULTS + "/metrics/{task}/{method}.json",
        per_item=RESULTS + "/metrics/{task}/{method}.items.csv",
    params:
        metrics=lambda wc: config["tasks"][wc.task]["metrics"],
        options=config["metrics"],
        clip_backbone=clip_backbone_spec(),
        shape_cnn_dir=world_model_dir("shape_cnn") if "world" in config else None,
        device=config.get("device", "auto"),
    threads: workflow.cores
    log:
        LOGS + "/evaluate/{task}/{method}.log",
    benchmark:
        BENCH + "/evaluate/{task}/{method}.tsv"
    script:
        "../scripts/evaluate.py"
