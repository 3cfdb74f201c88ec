# Shared helpers: which methods run which tasks, and where files live.
# Listing methods imports no torch, so building the DAG stays fast.
from pathlib import Path

import methods as method_registry
from ipbench.provenance import config_hash
from ipbench.tasks import check_task_metrics

SUITE = config["suite"]
RESULTS = f"results/{SUITE}"
TASKS = sorted(config["tasks"])
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
REGISTERED = method_registry.available_methods()


def _own_params(method):
    return (config["methods"][method] or {}).get("params", {})


def sweep_members(sweep):
    """(value, image-set name, params) for each value of a sweep, in config order.

    A value equal to the method's own setting reuses its main image set; any
    other is an extra set named <method>_<sweep><value> (dots become p).
    """
    spec = config["sweeps"][sweep]
    base = spec["method"]
    if base not in config["methods"]:
        raise ValueError(f"config key sweeps.{sweep}.method: {base!r} is not one of the configured methods")
    if spec["task"] not in config["tasks"]:
        raise ValueError(f"config key sweeps.{sweep}.task: {spec['task']!r} is not one of the configured tasks")
    members = []
    for value in spec["values"]:
        params = {**_own_params(base), spec["param"]: value}
        name = base if params == _own_params(base) else f"{base}_{sweep}{str(value).replace('.', 'p').replace('-', 'm')}"
        members.append((value, name, params))
    return members


# Extra image sets of sweeps: name -> (configured method, params).
SWEEP_VARIANTS = {name: (config["sweeps"][sweep]["method"], params)
                  for sweep in config.get("sweeps", {})
                  for _, name, params in sweep_members(sweep) if name != config["sweeps"][sweep]["method"]}


def _method_config(name):
    if name in SWEEP_VARIANTS:
        base, params = SWEEP_VARIANTS[name]
        return {**(config["methods"][base] or {}), "params": params}
    return config["methods"][name] or {}


def method_class(name):
    """The registered method an image set comes from (a sweep variant runs its base method)."""
    return SWEEP_VARIANTS[name][0] if name in SWEEP_VARIANTS else name


def _check_methods():
    """Fail before any job runs if the config names something that does not exist."""
    for name in config["methods"]:
        if name not in REGISTERED:
            raise ValueError(
                f"config key methods.{name}: no registered method {name!r} "
                f"(registered: {', '.join(REGISTERED)}; a method is a file in methods/)"
            )
        for task in _method_config(name).get("tasks", []):
            if task not in REGISTERED[name].tasks:
                raise ValueError(f"config key methods.{name}.tasks: {name} does not support task {task!r} "
                                 f"(it supports {', '.join(REGISTERED[name].tasks)})")
    for task, settings in config["tasks"].items():
        check_task_metrics(task, settings["metrics"])
    if config["baseline"] not in config["methods"]:
        raise ValueError(f"config key baseline: {config['baseline']!r} is not one of the configured methods")


_check_methods()


def methods_for(task):
    """Configured methods that run ``task``, in config order."""
    chosen = []
    for name in config["methods"]:
        wanted = _method_config(name).get("tasks") or REGISTERED[name].tasks
        if task in wanted and task in REGISTERED[name].tasks:
            chosen.append(name)
    return chosen


def samples_for(task, method):
    return _method_config(method).get("samples_per_item", config["tasks"][task]["samples_per_item"])


def shards_for(task):
    return config["tasks"][task].get("shards", 1)


# A method parameter may name the mini world's Stable Diffusion pipeline, assembled by a rule.
MINI_SD = "mini-sd"


def method_params(method):
    """The method's params, with "mini-sd" replaced by the assembled pipeline folder."""
    return {key: f"{RESULTS}/pipelines/mini_sd" if value == MINI_SD else value
            for key, value in _method_config(method).get("params", {}).items()}


def method_inputs(method):
    """Files a method's preparation reads: the assembled mini SD pipeline when its params name it."""
    uses_mini_sd = MINI_SD in _method_config(method).get("params", {}).values()
    return [f"{RESULTS}/pipelines/mini_sd"] if uses_mini_sd else []


def uses_gpu(method):
    return int(REGISTERED[method_class(method)].uses_gpu)


def metric_enabled(task, metric):
    return metric in config["tasks"][task]["metrics"]


def tradeoff_available(task):
    return metric_enabled(task, "clip_i") and metric_enabled(task, "clip_t")


def lpips_weights():
    net = config["metrics"].get("lpips", {}).get("net", "alex")
    return f"data/weights/lpips_{net}.pt"


# ---- the mini world's models (rules in world.smk)

WORLD_MODELS = ("shape_cnn", "judge_clip", "cond_clip", "vae", "unet")
# Models a model's training reads (the VAE's and UNet's final numbers use the shape CNN).
WORLD_MODEL_INPUTS = {"vae": ("shape_cnn",), "unet": ("vae", "cond_clip", "shape_cnn")}
WORLD = config.get("world", {})
CHECKPOINTS = WORLD.get("checkpoints", "data/checkpoints")


def _retrained():
    """`--config retrain=true` retrains every model; `retrain=vae,unet` only those."""
    value = str(config.get("retrain", False))
    if value.lower() in ("true", "false"):
        return set(WORLD_MODELS) if value.lower() == "true" else set()
    return set(value.split(","))


RETRAINED = _retrained()


def world_model(name):
    """The file a consumer of model ``name`` depends on; its folder holds the model."""
    if name in RETRAINED:
        return f"{RESULTS}/trained/{name}/manifest.json"
    return f"{RESULTS}/checkpoints/{name}/verified.json"


def world_model_dir(name):
    return f"{RESULTS}/trained/{name}" if name in RETRAINED else f"{CHECKPOINTS}/{name}"


def _training(name):
    train = WORLD.get("train", {})
    return {"seed": train.get("seed", 0), **train.get(name, {})}


def _train_inputs(wc):
    inputs = {"train_set": f"{RESULTS}/world/train_set.npz"}
    for name in WORLD_MODEL_INPUTS.get(wc.model, ()):
        inputs[name] = world_model(name)
    if wc.model == "vae":
        inputs["lpips_weights"] = "data/weights/lpips_alex.pt"  # the VAE's perceptual loss
    return inputs


def _validation_inputs(wc):
    inputs = {name: world_model(name) for name in WORLD_MODELS}
    inputs["lpips_weights"] = "data/weights/lpips_alex.pt"  # VAE reconstruction LPIPS
    if "variation" in TASKS and "reference" in methods_for("variation"):
        inputs["real_a"] = f"{RESULTS}/features/variation/methods/reference.inception.npz"
        inputs["real_b"] = f"{RESULTS}/features/variation/reference_set.inception.npz"
    return inputs


# ---- evaluation inputs (rules in evaluate.smk)

def _feature_params():
    return {"device": config.get("device", "auto"), **config["metrics"].get("inception", {})}


def _evaluate_inputs(wc):
    inputs = {
        "data": f"{RESULTS}/data/{wc.task}",
        "manifest": f"{RESULTS}/images/{wc.task}/{wc.method}/manifest.jsonl",
    }
    if metric_enabled(wc.task, "fid") or metric_enabled(wc.task, "kid"):
        inputs["features"] = f"{RESULTS}/features/{wc.task}/methods/{wc.method}.inception.npz"
        inputs["reference_features"] = f"{RESULTS}/features/{wc.task}/reference_set.inception.npz"
    if metric_enabled(wc.task, "lpips"):
        inputs["lpips_weights"] = lpips_weights()
    if metric_enabled(wc.task, "attributes") and "world" in config:
        inputs["shape_cnn"] = world_model("shape_cnn")
    if clip_backbone() == "mini-judge":
        inputs["judge_clip"] = world_model("judge_clip")
    return inputs


def clip_backbone():
    return config["metrics"].get("clip", {}).get("backbone")


def clip_backbone_spec():
    """The backbone spec the metric engine loads; "mini-judge" is the mini world's judge CLIP."""
    spec = clip_backbone()
    return f"hf-clip:{world_model_dir('judge_clip')}" if spec == "mini-judge" else spec


wildcard_constraints:
    task="|".join(TASKS),
    method="[a-z][a-z0-9_]*",
    shard=r"\d{3}",
