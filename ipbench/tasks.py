"""Evaluation protocols: what a method is given, and which metrics make sense.

A task offers some of the metric inputs (``metrics.registry.INPUTS``); a metric
applies to the tasks that offer everything it needs. Kept free of heavy
imports: the Snakefile and the config checks read it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    description: str
    image_key: str | None  # condition key holding the image prompt(s)
    provides: tuple[str, ...]

    def prompt_images(self, condition: dict) -> list[str]:
        """Relative paths of the item's image prompts (always a list)."""
        if self.image_key is None:
            return []
        value = condition[self.image_key]
        return [value] if isinstance(value, str) else list(value)


IMAGE_PROMPTED = ("images", "prompts", "prompt_images", "truth", "real_set")
TASKS = {
    "variation": Task("an image prompt (and its caption) -> images (IP-Adapter Table 1)", "image", IMAGE_PROMPTED),
    "subject": Task("K reference images of one subject plus a prompt -> images (DreamBench)", "images",
                    IMAGE_PROMPTED),
    "text2image": Task("a caption -> images (GenEval-style compositional check in the mini world)", None,
                       ("images", "prompts", "truth", "real_set")),
}


def metric_registry() -> dict:
    """Every registered metric, the mini world's included."""
    import ipbench.world.metrics  # noqa: F401  (registers attributes, subject_iou, colour_error)
    from metrics.registry import registered

    return registered()


def task_metrics(task: str) -> list[str]:
    """Names of the metrics that ``task`` can compute."""
    return [name for name, metric in metric_registry().items() if set(metric.needs) <= set(TASKS[task].provides)]


def check_task_metrics(task: str, metrics: list[str]) -> None:
    if task not in TASKS:
        raise ValueError(f"config key tasks.{task}: unknown task; known: {', '.join(TASKS)}")
    registry = metric_registry()
    for metric in metrics:
        if metric not in registry:
            raise ValueError(f"config key tasks.{task}.metrics: {metric!r} is not a registered metric "
                             f"(registered: {', '.join(registry)})")
        if metric not in task_metrics(task):
            missing = sorted(set(registry[metric].needs) - set(TASKS[task].provides))
            raise ValueError(f"config key tasks.{task}.metrics: {metric!r} does not apply to {task}: it needs "
                             f"{', '.join(missing)} (the task takes {', '.join(task_metrics(task))})")


def value_infos() -> dict:
    """Every reported value (``metrics.registry.Value``) by name, in table column order."""
    return {name: info for metric in metric_registry().values() for name, info in metric.values.items()}
