# ipbench: generate standardized image sets for each method and evaluate them.
#   snakemake --cores all                                # default suite (config/config.yaml)
#   snakemake --cores all --configfile config/smoke.yaml # another suite
import os
import sys

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, update_config, validate

min_version("8.0")

# methods/, metrics/ and ipbench/ are imported from this checkout, not from
# site-packages (docs/layout.md says why); job scripts inherit the path.
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))


# --configfile selects a whole suite: it replaces the default instead of being
# merged into it, so no key of the default suite leaks into another.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


def _yaml_values(value):
    """Nested ``--config`` values as YAML reads them (Snakemake reads them with YAML's BaseLoader: all strings)."""
    if isinstance(value, dict):
        return {key: _yaml_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_yaml_values(item) for item in value]
    return yaml.safe_load(value) if isinstance(value, str) and value else value


# `--config 'data={"n_items": 64}'` would otherwise give the string "64".
update_config(config, {key: _yaml_values(value) for key, value in workflow.config_settings.config.items()
                       if isinstance(value, (dict, list))})

try:
    validate(config, os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"))
except WorkflowError as error:  # its message would print the whole schema
    from jsonschema.exceptions import ValidationError

    from ipbench.schema import describe

    if not isinstance(error.__context__, ValidationError):
        raise
    raise WorkflowError(describe(error.__context__)) from None


onerror:
    # Snakemake's summary names each failed job's log; this prints the cause the log ends with.
    from ipbench.jobs import failure_summary

    summary = failure_summary(log)
    if summary:
        print(summary, file=sys.stderr)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/training.smk"


if WORLD:

    include: "workflow/rules/world.smk"


include: "workflow/rules/generate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/paper.smk"


rule all:
    input:
        expand(f"{RESULTS}/tables/{{task}}.{{ext}}", task=TASKS, ext=["csv", "md", "tex"]),
        f"{RESULTS}/provenance.json",
        [f"{RESULTS}/tables/world_validation.md"] if WORLD else [],
        expand(f"{RESULTS}/tables/sweep_{{sweep}}.csv", sweep=list(config.get("sweeps", {}))),
        paper_files(),  # seconds: figures and tables drawn from the tables above (rule paper)
        f"{RESULTS}/README.md",
    default_target: True
