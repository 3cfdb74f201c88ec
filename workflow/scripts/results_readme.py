"""results/<suite>/README.md: what each table and figure of this suite means."""
from ipbench.io import atomic_write_text
from ipbench.jobs import start_job
from ipbench.tasks import TASKS, value_infos

log = start_job(snakemake)
suite = snakemake.params.suite
lines = [f"# Results of suite `{suite}`", "",
         "Written by the Snakemake DAG; regenerate with `snakemake --cores all`"
         + ("" if suite == "mini" else f" --configfile config/{suite}.yaml") + ".", "", "## Tables", ""]
for task in snakemake.params.tasks:
    lines.append(f"- `tables/{task}.{{csv,md,tex}}`: task `{task}`, {TASKS[task].description}. Methods as rows, "
                 "metrics as columns, value ± half-width of the bootstrap 95% CI over items, † where a paired test "
                 "against the baseline gives p < 0.05; the CSV has full precision, n and each metric's backbone.")
if snakemake.params.world:
    lines.append("- `tables/world_validation.{csv,md}`: how well the mini world's analyzers, mini-CLIPs and the mini "
                 "SD's VAE work on fresh renders (targets in the table), and the real-vs-real FID/KID noise floor.")
for sweep, spec in snakemake.params.sweeps.items():
    lines.append(f"- `tables/sweep_{sweep}.csv` and `paper/sweep_{sweep}.{{pdf,png}}`: `{spec['method']}` on task "
                 f"`{spec['task']}` at {spec['param']} = {', '.join(str(v) for v in spec['values'])}; every metric "
                 "of the task per value, with bootstrap 95% CIs (long form).")
lines += ["", "## Metrics", ""]
lines += [f"- **{info.label}** ({'higher' if info.higher_is_better else 'lower'} is better): {info.description}."
          for info in value_infos().values()]
lines += ["", "## Paper folder (`paper/`)", "",
          "Each figure as vector PDF and PNG, each table as LaTeX (booktabs), Markdown and HTML, all drawn from the "
          "tables above (`snakemake --cores all paper` redraws them in seconds); captions in `report.html`.", "",
          "- `<task>_grid`: per item its text prompt and every image prompt, then the first sample of each method, "
          "the oracle last.",
          "- `<task>_bars`: every metric with its 95% CI.",
          "- `<task>_tradeoff` (tasks with CLIP-I and CLIP-T): CLIP-T against CLIP-I per method, a sweep on the "
          "task as a curve.",
          "- `sweep_<sweep>`: each configured sweep's metrics against the swept value.",
          "- `summary`: one panel per task, methods ranked by the task's headline metric.",
          "- `<task>.{tex,md,html}`: the task's table, captioned with the protocol (n, settings, backbones).",
          "", "`provenance.json` records packages, git commit, weight hashes, config hash and device.", ""]
atomic_write_text(snakemake.output[0], "\n".join(lines))
log.info("wrote %s", snakemake.output[0])
