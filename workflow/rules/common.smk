# Shared helpers: which methods run which tasks, and where files live.
# Listing methods imports no torch, so building the DAG stays fast.
from pathlib import Path

import methods as method_registry
from ipbench.tasks import check_task_metrics

SUITE = config["suite"]
RESULTS = f"results/{SUITE}"
TASKS = sorted(config["tasks"])
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
REGISTERED = method_registry.available_methods()


def _method_config(name):
    return config["methods"][name] or {}


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


def method_params(method):
    return _method_config(method).get("params", {})


def uses_gpu(method):
    return int(REGISTERED[method].uses_gpu)


def metric_enabled(task, metric):
    return metric in config["tasks"][task]["metrics"]


def lpips_weights():
    net = config["metrics"].get("lpips", {}).get("net", "alex")
    return f"data/weights/lpips_{net}.pt"


wildcard_constraints:
    task="|".join(TASKS),
    method="[a-z][a-z0-9_]*",
    shard=r"\d{3}",
