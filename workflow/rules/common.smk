# Shared helpers: which methods run which tasks, where files live, what each job reads and runs on.
# Listing methods, artifacts and metrics imports no torch, so building the DAG stays fast.
import re
from pathlib import Path

import methods as method_registry
from ipbench import captions, datasets
from ipbench.code_digest import code_digest
from ipbench.gpu import dag_device, gpu_resource, visible_gpus
from ipbench.params import model_params
from ipbench.provenance import config_hash
from ipbench.published import PUBLISHED
from ipbench.sources import PIPELINES, SourceTable, parse_retrain
from ipbench.tasks import check_task_metrics, metric_registry
from ipbench.training.registry import available_artifacts, merged_settings

SUITE = config["suite"]
RESULTS = f"{config.get('results', 'results')}/{SUITE}"  # config key results: another folder, same seeds
TASKS = sorted(config["tasks"])
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
REGISTERED = method_registry.available_methods()
ARTIFACTS = available_artifacts()
METRICS = metric_registry()
WORLD = config.get("world")
# One decision for every job: `auto` becomes cuda only where a GPU is visible, and then GPU jobs reserve gpu=1.
DEVICE = dag_device(config.get("device", "auto"), visible_gpus())


def code_of(script, *modules):
    """The digest of the project code a job runs: its script's imports, followed (ipbench/code_digest.py), plus
    ``modules`` the script loads by name. A params entry, so editing that code reruns the job."""
    return code_digest(Path(workflow.basedir), (f"workflow/scripts/{script}", *modules))


def code_digests():
    """Per task, the code digest of each job kind behind its table (recorded in provenance.json)."""
    shared = {"table": code_of("table.py"), "evaluate": code_of("evaluate.py"),
              "features": code_of("inception_features.py"), "build_task_data": code_of("build_task_data.py")}
    return {task: {**shared, "generate_shard": {name: code_of("generate_shard.py", method_cls(name).__module__)
                                                for name in methods_for(task)}}
            for task in TASKS}


def artifact_module(name):
    return ARTIFACTS[name].train.partition(":")[0]


def gpu(runs_network=True):
    """resources: gpu of a job (1 exactly when it runs a network on CUDA)."""
    return gpu_resource(DEVICE, runs_network)


# ---- methods: configured entries, their variants and sweeps

def _value_tag(value):
    return str(value).replace(".", "p").replace("-", "m")


def _configured(name, entry):
    entry = dict(entry or {})
    cls = entry.pop("method", name)
    if cls not in REGISTERED:
        raise ValueError(f"config key methods.{name}" + (".method" if cls != name else "")
                         + f": no registered method {cls!r} (registered: {', '.join(REGISTERED)}; "
                         "a method is a file in methods/)")
    return {"class": cls, **entry}


METHODS = {name: _configured(name, entry) for name, entry in config["methods"].items()}


def sweep_members(sweep):
    """(value, image-set name, params) for each value of a sweep, in config order.

    A value equal to the method's own setting reuses its main image set; any
    other is an extra image set named <method>_<sweep><value> (dots become p).
    """
    spec = config["sweeps"][sweep]
    base = spec["method"]
    if base not in METHODS:
        raise ValueError(f"config key sweeps.{sweep}.method: {base!r} is not one of the configured methods")
    if spec["task"] not in config["tasks"]:
        raise ValueError(f"config key sweeps.{sweep}.task: {spec['task']!r} is not one of the configured tasks")
    own = METHODS[base].get("params", {})
    members = []
    for value in spec["values"]:
        params = {**own, spec["param"]: value}
        name = base if params == own else f"{base}_{sweep}{_value_tag(value)}"
        members.append((value, name, params))
    return members


# Extra image sets of sweeps are variants of their method, not rows of the main tables.
SWEEP_SETS = {name: {**METHODS[config["sweeps"][sweep]["method"]], "params": params}
              for sweep in config.get("sweeps", {})
              for _, name, params in sweep_members(sweep) if name != config["sweeps"][sweep]["method"]}
IMAGE_SETS = {**METHODS, **SWEEP_SETS}


def method_class(name):
    return IMAGE_SETS[name]["class"]


def method_cls(name):
    return REGISTERED[method_class(name)]


def methods_for(task):
    """Configured methods (table rows) that run ``task``, in config order."""
    return [name for name, entry in METHODS.items()
            if task in (entry.get("tasks") or method_cls(name).tasks) and task in method_cls(name).tasks]


def samples_for(task, name):
    return IMAGE_SETS[name].get("samples_per_item", config["tasks"][task]["samples_per_item"])


def batch_size_for(name):
    return IMAGE_SETS[name].get("batch_size", method_cls(name).batch_size)


def shards_for(task):
    return config["tasks"][task].get("shards", 1)


def data_options(task):
    """The suite's data settings with the task's own (tasks.<task>.data) over them."""
    return {**config["data"], **config["tasks"][task].get("data", {})}


# ---- model sources and artifacts (ipbench.sources)

SUBJECTS = datasets.subject_ids(data_options("subject")) if "subject" in config["tasks"] else []
CHECKPOINTS = config.get("checkpoints", "data/checkpoints")
WORLD_ARTIFACTS = [name for name, a in ARTIFACTS.items() if a.kind == "world"] if WORLD else []
RETRAINED = parse_retrain(config.get("retrain", False), list(ARTIFACTS))
SOURCES = SourceTable(RESULTS, CHECKPOINTS, ARTIFACTS, RETRAINED, TASKS, bool(WORLD), SUBJECTS)


def resolved_params(name):
    """The image set's checked params with every model source resolved: {param: Resolved}."""
    params = IMAGE_SETS[name].get("params", {})
    key = f"methods.{name}.params"
    settings = method_cls(name).check(params, key)
    return {p: SOURCES.resolve(settings[p], f"config key {key}.{p}") for p in model_params(method_cls(name).params)
            if settings[p] is not None}, settings


def method_params(name):
    """The params a job of image set ``name`` receives: model sources replaced by their paths."""
    sources, settings = resolved_params(name)
    return {**settings, **{p: resolved.path for p, resolved in sources.items()}}


def method_inputs(name):
    """DAG files the method's jobs wait for: the models its params name."""
    return sorted({path for resolved in resolved_params(name)[0].values() for path in resolved.inputs})


def artifact_settings(name):
    return merged_settings(ARTIFACTS[name], config.get("training", {}).get(name))


def artifact_sources(name):
    """{role: Resolved} of the sources an artifact trains from (per-subject data comes from its task folder);
    a training setting ``init_from`` (weights to continue from, e.g. shipped:if_base) is the role ``init``."""
    sources = dict(ARTIFACTS[name].inputs)
    init = artifact_settings(name).get("init_from")
    if init:
        sources["init"] = init
    return {role: SOURCES.resolve(source, f"artifact {name} " + ("setting init_from" if role == "init" else f"input {role}"))
            for role, source in sources.items()}


def train_inputs(wc):
    return sorted({path for resolved in artifact_sources(wc.artifact).values() for path in resolved.inputs})


def train_params(wc):
    return {role: resolved.path for role, resolved in artifact_sources(wc.artifact).items()}


def metric_options():
    """The config's metrics options, with backbone specs' model sources resolved (hf-clip:world:judge_clip)."""
    options = {key: dict(value) if isinstance(value, dict) else value for key, value in config["metrics"].items()}
    for section in ("clip", "dino"):
        spec = options.get(section, {}).get("backbone")
        if spec:
            prefix, _, source = spec.partition(":")
            options[section]["backbone"] = f"{prefix}:{SOURCES.resolve(source, f'config key metrics.{section}.backbone').path}"
    if WORLD:
        options["shape_cnn"] = SOURCES.artifact_dir("shape_cnn")
    return options


def metric_sources():
    """DAG files the metric backbones need (the judge CLIP, the mini DINO, the shape CNN)."""
    inputs = set()
    for section in ("clip", "dino"):
        spec = config["metrics"].get(section, {}).get("backbone")
        if spec:
            inputs |= set(SOURCES.resolve(spec.partition(":")[2], f"config key metrics.{section}.backbone").inputs)
    if WORLD:
        inputs |= set(SOURCES.artifact_inputs("shape_cnn"))
    return sorted(inputs)


# ---- the paper folder (rules in paper.smk)

PAPER = f"{RESULTS}/paper"


def method_settings(name):
    """The image set's params as configured over the declared defaults (model sources as named in the config)."""
    return method_cls(name).check(IMAGE_SETS[name].get("params", {}), f"config key methods.{name}.params")


def grid_methods(task):
    """The grid's columns: the methods, then the oracle (the exact render) last."""
    return sorted(methods_for(task), key=lambda name: method_class(name) == "oracle")


def headline(task):
    return config["tasks"][task].get("headline") or next(iter(METRICS[config["tasks"][task]["metrics"][0]].values))


def sweeps_on(task):
    return [sweep for sweep, spec in config.get("sweeps", {}).items() if spec["task"] == task]


def task_caption(kind):
    """A params function: the caption of a task's figure or table (the table's n and backbones once it exists)."""
    return lambda wc, input: captions.caption(
        kind, wc.task, captions.read_table(input.table), {m: method_settings(m) for m in methods_for(wc.task)},
        {m: samples_for(wc.task, m) for m in methods_for(wc.task)})


def paper_files():
    """Every file of the paper folder, for the `paper` target and the default one."""
    stems = [f"{task}_{kind}" for task in TASKS for kind in ("grid", "bars")]
    stems += [f"{task}_tradeoff" for task in TASKS if tradeoff_available(task)]
    stems += [f"sweep_{sweep}" for sweep in config.get("sweeps", {})] + ["summary"]
    return ([f"{PAPER}/{stem}.{ext}" for stem in stems for ext in ("pdf", "png")]
            + [f"{PAPER}/{task}.{ext}" for task in TASKS for ext in ("tex", "md", "html")])


def _check_config():
    """Fail before any job runs if the config names something that does not exist or does not fit."""
    for name, entry in IMAGE_SETS.items():
        cls = method_cls(name)
        for task in entry.get("tasks", []):
            if task not in cls.tasks:
                raise ValueError(f"config key methods.{name}.tasks: {cls.name} does not support task {task!r} "
                                 f"(it supports {', '.join(cls.tasks)})")
        resolved_params(name)
    for task, settings in config["tasks"].items():
        check_task_metrics(task, settings["metrics"])
        if settings.get("protocol") and settings["protocol"] not in PUBLISHED:
            raise ValueError(f"config key tasks.{task}.protocol: {settings['protocol']!r} is not a published "
                             f"protocol (known: {', '.join(PUBLISHED)})")
    if config["baseline"] not in METHODS:
        raise ValueError(f"config key baseline: {config['baseline']!r} is not one of the configured methods")
    for name in config.get("training", {}):
        if name not in ARTIFACTS:
            raise ValueError(f"config key training.{name}: no such artifact (known: {', '.join(ARTIFACTS)})")
        artifact_settings(name)
    metric_options()
    for task in TASKS:
        if headline(task) not in {value for metric in config["tasks"][task]["metrics"] for value in METRICS[metric].values}:
            raise ValueError(f"config key tasks.{task}.headline: {headline(task)!r} is not a value of the task's "
                             f"metrics ({', '.join(config['tasks'][task]['metrics'])})")


_check_config()


def metric_enabled(task, metric):
    return metric in config["tasks"][task]["metrics"]


def uses_features(task):
    return any(METRICS[m].kind == "set" for m in config["tasks"][task]["metrics"])


def real_features(task):
    """The Inception features of the task's real image set: those of the first task that has the same set
    (datasets.real_set_key), so a set shared by several tasks is featurized once."""
    key = datasets.real_set_key(data_options(task))
    owner = next((t for t in TASKS if uses_features(t) and key is not None
                  and datasets.real_set_key(data_options(t)) == key), task)
    return f"{RESULTS}/features/{owner}/real_set.inception.npz"


def tradeoff_available(task):
    return metric_enabled(task, "clip_i") and metric_enabled(task, "clip_t")


def published_rows(task):
    """Each method's paper row under the task's published protocol (config key methods.<m>.published), or None."""
    protocol = config["tasks"][task].get("protocol")
    return {m: METHODS[m].get("published", {}).get(protocol) for m in methods_for(task)}


def lpips_weights():
    return f"data/weights/lpips_{config['metrics'].get('lpips', {}).get('net', 'alex')}.pt"


# ---- evaluation inputs (rules in evaluate.smk)

def _feature_params():
    return {"device": DEVICE, **config["metrics"].get("inception", {})}


def _evaluate_inputs(wc):
    inputs = {
        "data": f"{RESULTS}/data/{wc.task}",
        "manifest": f"{RESULTS}/images/{wc.task}/{wc.method}/manifest.jsonl",
        "models": metric_sources(),
    }
    if uses_features(wc.task):
        inputs["features"] = f"{RESULTS}/features/{wc.task}/methods/{wc.method}.inception.npz"
        inputs["real_features"] = real_features(wc.task)
    if metric_enabled(wc.task, "lpips"):
        inputs["lpips_weights"] = lpips_weights()
    return inputs


wildcard_constraints:
    task="|".join(TASKS),
    method="[a-z][a-z0-9_]*",
    shard=r"\d{3}",
