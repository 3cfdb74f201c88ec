# Methods: prepare once (record or download what they run on), then generate sharded image sets.
# Batches are fixed groups of sorted item ids and shards take whole batches, so the shard count never
# changes an image.


rule prepare_method:
    input:
        lambda wc: method_inputs(wc.method),
    output:
        f"{RESULTS}/models/{{method}}/prepared.json",
    params:
        code=lambda wc: code_of("prepare_method.py", method_cls(wc.method).__module__),
        method_class=lambda wc: method_class(wc.method),
        params=lambda wc: method_params(wc.method),
    priority: 5  # about a second each, and every image set waits for one
    log:
        f"{LOGS}/prepare_method/{{method}}.log",
    benchmark:
        f"{BENCH}/prepare_method/{{method}}.tsv"
    script:
        "../scripts/prepare_method.py"


rule generate_shard:
    input:
        data=f"{RESULTS}/data/{{task}}",
        prepared=rules.prepare_method.output[0],
        models=lambda wc: method_inputs(wc.method),  # so the job checks shipped checkpoints it loads again
    output:
        directory(f"{RESULTS}/images/{{task}}/{{method}}/shard-{{shard}}"),
    params:
        code=lambda wc: code_of("generate_shard.py", method_cls(wc.method).__module__),
        method_class=lambda wc: method_class(wc.method),
        # One dict, not four numbers: Snakemake compares a job's params as a set of values, so swapping
        # "shards: 1, samples: 2" for "shards: 2, samples: 1" would not rerun the shard.
        plan=lambda wc: {"suite": SUITE, "samples": samples_for(wc.task, wc.method),
                         "batch_size": batch_size_for(wc.method), "shards": shards_for(wc.task)},
        params=lambda wc: method_params(wc.method),
        device=DEVICE,
    resources:
        gpu=lambda wc: gpu(method_cls(wc.method).uses_gpu),
    # Image sets first: each heads a chain (features, evaluation, table, figures) that can only run after
    # it, so a long set started last leaves one core idle at the end (a 134 s tail on 2026-12-02).
    priority: 5
    log:
        f"{LOGS}/generate_shard/{{task}}/{{method}}/{{shard}}.log",
    benchmark:
        f"{BENCH}/generate_shard/{{task}}/{{method}}/{{shard}}.tsv"
    script:
        "../scripts/generate_shard.py"


rule merge_shards:
    input:
        lambda wc: expand(
            f"{RESULTS}/images/{{{{task}}}}/{{{{method}}}}/shard-{{shard:03d}}", shard=range(shards_for(wc.task))
        ),
    output:
        f"{RESULTS}/images/{{task}}/{{method}}/manifest.jsonl",
    params:
        code=code_of("merge_shards.py"),
    log:
        f"{LOGS}/merge_shards/{{task}}/{{method}}.log",
    script:
        "../scripts/merge_shards.py"
