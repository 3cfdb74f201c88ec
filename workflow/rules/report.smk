# Tables, figures and provenance: everything a paper needs, regenerated from metrics.


rule table:
    input:
        metrics=lambda wc: expand(f"{RESULTS}/metrics/{{{{task}}}}/{{method}}.json", method=methods_for(wc.task)),
        per_item=lambda wc: expand(f"{RESULTS}/metrics/{{{{task}}}}/{{method}}.items.csv", method=methods_for(wc.task)),
        features=lambda wc: (
            expand(f"{RESULTS}/features/{{{{task}}}}/methods/{{method}}.inception.npz", method=methods_for(wc.task))
            + [real_features(wc.task)]
            if uses_features(wc.task)
            else []
        ),
        manifests=lambda wc: expand(f"{RESULTS}/images/{{{{task}}}}/{{method}}/manifest.jsonl", method=methods_for(wc.task)),
    output:
        csv=f"{RESULTS}/tables/{{task}}.csv",
        md=f"{RESULTS}/tables/{{task}}.md",
        tex=f"{RESULTS}/tables/{{task}}.tex",
    params:
        code=code_of("table.py"),
        methods=lambda wc: methods_for(wc.task),
        baseline=config["baseline"],
        suite=SUITE,
        options=config["metrics"],
        protocol=lambda wc: config["tasks"][wc.task].get("protocol"),
        published_rows=lambda wc: published_rows(wc.task),
    log:
        f"{LOGS}/table/{{task}}.log",
    benchmark:
        f"{BENCH}/table/{{task}}.tsv"
    script:
        "../scripts/table.py"


rule results_readme:
    output:
        f"{RESULTS}/README.md",
    params:
        code=code_of("results_readme.py"),
        suite=SUITE,
        tasks=TASKS,
        world=bool(WORLD),
        sweeps=config.get("sweeps", {}),
    log:
        f"{LOGS}/results_readme.log",
    script:
        "../scripts/results_readme.py"


rule provenance:
    input:
        tables=expand(f"{RESULTS}/tables/{{task}}.csv", task=TASKS),
        prepared=expand(f"{RESULTS}/models/{{method}}/prepared.json", method=list(METHODS)),
    output:
        f"{RESULTS}/provenance.json",
    params:
        code=code_of("provenance.py"),
        code_digests=code_digests(),
        config=config,
    log:
        f"{LOGS}/provenance.log",
    script:
        "../scripts/provenance.py"


rule sweep:
    # A method run at several values of one parameter (config key sweeps): every metric of the task per value.
    input:
        lambda wc: [f"{RESULTS}/metrics/{config['sweeps'][wc.sweep]['task']}/{name}.json"
                    for _, name, _ in sweep_members(wc.sweep)],
    output:
        f"{RESULTS}/tables/sweep_{{sweep}}.csv",
    params:
        code=code_of("sweep.py"),
        spec=lambda wc: config["sweeps"][wc.sweep],
        members=lambda wc: [(value, name) for value, name, _ in sweep_members(wc.sweep)],
    log:
        f"{LOGS}/sweep/{{sweep}}.log",
    script:
        "../scripts/sweep.py"
