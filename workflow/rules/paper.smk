# The paper folder (results/<suite>/paper/): every figure as PDF and PNG, every table as LaTeX and Markdown
# (and HTML for the report), with captions that give the protocol. These jobs read only cached tables and
# image sets, so a styling edit reruns them alone (seconds), never generation or evaluation.
rule paper_grid:
    input:
        table=f"{RESULTS}/tables/{{task}}.csv",
        data=f"{RESULTS}/data/{{task}}",
        manifests=lambda wc: expand(f"{RESULTS}/images/{{{{task}}}}/{{method}}/manifest.jsonl",
                                    method=grid_methods(wc.task)),
    output:
        pdf=f"{PAPER}/{{task}}_grid.pdf",
        png=report(f"{PAPER}/{{task}}_grid.png", caption="../report/caption.rst", category="Figures",
                   subcategory="{task}"),
    params:
        code=code_of("paper_grid.py"),
        methods=lambda wc: grid_methods(wc.task),
        caption=task_caption("grid"),
    log:
        f"{LOGS}/paper/{{task}}_grid.log",
    script:
        "../scripts/paper_grid.py"


rule paper_bars:
    input:
        table=f"{RESULTS}/tables/{{task}}.csv",
    output:
        pdf=f"{PAPER}/{{task}}_bars.pdf",
        png=report(f"{PAPER}/{{task}}_bars.png", caption="../report/caption.rst", category="Figures",
                   subcategory="{task}"),
    params:
        code=code_of("paper_bars.py"),
        methods=lambda wc: methods_for(wc.task),
        caption=task_caption("bars"),
    log:
        f"{LOGS}/paper/{{task}}_bars.log",
    script:
        "../scripts/paper_bars.py"


rule paper_tradeoff:
    # Tasks that measure both CLIP-T and CLIP-I; a sweep configured on the task is drawn as a curve.
    input:
        table=f"{RESULTS}/tables/{{task}}.csv",
        sweeps=lambda wc: [f"{RESULTS}/tables/sweep_{sweep}.csv" for sweep in sweeps_on(wc.task)],
    output:
        pdf=f"{PAPER}/{{task}}_tradeoff.pdf",
        png=report(f"{PAPER}/{{task}}_tradeoff.png", caption="../report/caption.rst", category="Figures",
                   subcategory="{task}"),
    params:
        code=code_of("paper_tradeoff.py"),
        methods=lambda wc: methods_for(wc.task),
        caption=task_caption("tradeoff"),
    log:
        f"{LOGS}/paper/{{task}}_tradeoff.log",
    script:
        "../scripts/paper_tradeoff.py"


rule paper_sweep:
    # One figure per configured sweep (config key sweeps): it appears when a sweep is configured.
    input:
        table=f"{RESULTS}/tables/sweep_{{sweep}}.csv",
    output:
        pdf=f"{PAPER}/sweep_{{sweep}}.pdf",
        png=report(f"{PAPER}/sweep_{{sweep}}.png", caption="../report/caption.rst", category="Figures",
                   subcategory="sweeps"),
    params:
        code=code_of("paper_sweep.py"),
        spec=lambda wc: config["sweeps"][wc.sweep],
        methods=list(METHODS),
        caption=lambda wc, input: captions.sweep_caption(
            wc.sweep, config["sweeps"][wc.sweep], captions.read_table(input.table),
            method_settings(config["sweeps"][wc.sweep]["method"]),
            samples_for(config["sweeps"][wc.sweep]["task"], config["sweeps"][wc.sweep]["method"])),
    log:
        f"{LOGS}/paper/sweep_{{sweep}}.log",
    script:
        "../scripts/paper_sweep.py"


rule paper_summary:
    # One panel per task: methods ranked by the task's headline value (config key tasks.<task>.headline).
    input:
        tables=expand(f"{RESULTS}/tables/{{task}}.csv", task=TASKS),
    output:
        pdf=f"{PAPER}/summary.pdf",
        png=report(f"{PAPER}/summary.png", caption="../report/caption.rst", category="Figures",
                   subcategory="summary"),
    params:
        code=code_of("paper_summary.py"),
        tasks=TASKS,
        headlines={task: headline(task) for task in TASKS},
        methods=list(METHODS),
        caption=lambda wc, input: captions.summary_caption(
            {task: headline(task) for task in TASKS},
            {task: captions.read_table(path) for task, path in zip(TASKS, input.tables)}),
    log:
        f"{LOGS}/paper/summary.log",
    script:
        "../scripts/paper_summary.py"


rule paper_table:
    input:
        table=f"{RESULTS}/tables/{{task}}.csv",
    output:
        tex=f"{PAPER}/{{task}}.tex",
        md=f"{PAPER}/{{task}}.md",
        html=report(f"{PAPER}/{{task}}.html", caption="../report/caption.rst", category="Tables"),
    params:
        code=code_of("paper_table.py", "ipbench.captions"),  # its caption is written into the files
        methods=lambda wc: methods_for(wc.task),
        baseline=config["baseline"],
        suite=SUITE,
        protocol=lambda wc: config["tasks"][wc.task].get("protocol"),
        published_rows=lambda wc: published_rows(wc.task),
        caption=task_caption("table"),
    log:
        f"{LOGS}/paper/{{task}}_table.log",
    script:
        "../scripts/paper_table.py"


rule paper:
    # `snakemake --cores all paper`: the whole paper folder (also part of the default target).
    input:
        paper_files(),
