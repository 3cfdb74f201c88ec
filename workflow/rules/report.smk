# Tables, figures and provenance: everything a paper needs, regenerated from metrics.


rule table:
    input:
        metrics=lambda wc: expand(RESULTS + "/metrics/{{task}}/{method}.json", method=methods_for(wc.task)),
        per_item=lambda wc: expand(RESULTS + "/metrics/{{task}}/{method}.items.csv", method=methods_for(wc.task)),
        features=lambda wc: (
            expand(RESULTS + "/features/{{task}}/methods/{method}.inception.npz", method=methods_for(wc.task))
            + [RESULTS + "/features/{task}/reference_set.inception.npz"]
            if metric_enabled(wc.task, "fid") or metric_enabled(wc.task, "kid")
            else []
        ),
        manifests=lambda wc: expand(RESULTS + "/images/{{task}}/{method}/manifest.jsonl", method=methods_for(wc.task)),
    output:
        csv=report(RESULTS + "/tables/{task}.csv", caption="../report/table.rst", category="Tables"),
        md=RESULTS + "/tables/{task}.md",
        tex=RESULTS + "/tables/{task}.tex",
    params:
        methods=lambda wc: methods_for(wc.task),
        baseline=config["baseline"],
        suite=SUITE,
        options=config["metrics"],
    log:
        LOGS + "/table/{task}.log",
    benchmark:
        BENCH + "/table/{task}.tsv"
    script:
        "../scripts/table.py"


rule figures:
    input:
        table=RESULTS + "/tables/{task}.csv",
        data=RESULTS + "/data/{task}",
        manifests=lambda wc: expand(
            RESULTS + "/images/{{task}}/{method}/manifest.jsonl", method=methods_for(wc.task)
        ),
    output:
        grid=report(RESULTS + "/figures/{task}_grid.png", caption="../report/grid.rst", category="Figures"),
        bars=report(RESULTS + "/figures/{task}_bars.png", caption="../report/bars.rst", category="Figures"),
    params:
        methods=lambda wc: methods_for(wc.task),
    log:
        LOGS + "/figures/{task}.log",
    script:
        "../scripts/figures.py"


rule provenance:
    input:
        tables=expand(RESULTS + "/tables/{task}.csv", task=TASKS),
        prepared=expand(RESULTS + "/models/{method}/prepared.json", method=list(config["methods"])),
    output:
        RESULTS + "/provenance.json",
    params:
        config=config,
    log:
        LOGS + "/provenance.log",
    script:
        "../scripts/provenance.py"
