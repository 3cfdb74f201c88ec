# Features are computed once per image set and cached as DAG outputs;
# metrics read them instead of re-running Inception.


rule real_features:
    input:
        rules.build_task_data.output[0],
    output:
        f"{RESULTS}/features/{{task}}/real_set.inception.npz",
    params:
        code=code_of("inception_features.py"),
        images=lambda wc, input: f"{input[0]}/real",
        options=_feature_params(),
    resources:
        gpu=gpu(),
    log:
        f"{LOGS}/features/{{task}}/real_set.log",
    benchmark:
        f"{BENCH}/features/{{task}}/real_set.tsv"
    script:
        "../scripts/inception_features.py"


rule method_features:
    input:
        rules.merge_shards.output[0],
    output:
        f"{RESULTS}/features/{{task}}/methods/{{method}}.inception.npz",
    params:
        code=code_of("inception_features.py"),
        images=lambda wc, input: str(Path(input[0]).parent),
        options=_feature_params(),
    resources:
        gpu=gpu(),
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
        code=code_of("evaluate.py"),
        metrics=lambda wc: config["tasks"][wc.task]["metrics"],
        options=metric_options(),
        device=DEVICE,
    resources:
        gpu=gpu(),
    log:
        f"{LOGS}/evaluate/{{task}}/{{method}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{task}}/{{method}}.tsv"
    script:
        "../scripts/evaluate.py"
