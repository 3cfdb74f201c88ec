"""Evaluation protocols: what a method is given, and which metrics make sense.

Kept free of heavy imports: the Snakefile and the config checks read it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    description: str
    image_key: str | None  # condition key holding the image prompt(s)
    metrics: tuple[str, ...]

    def prompt_images(self, condition: dict) -> list[str]:
        """Relative paths of the item's image prompts (always a list)."""
        if self.image_key is None:
            return []
        value = condition[self.image_key]
        return [value] if isinstance(value, str) else list(value)


TASKS = {
    "variation": Task("an image prompt (and its caption) -> images (IP-Adapter Table 1)", "image",
                      ("fid", "kid", "lpips", "clip_i", "clip_t", "attributes", "subject_iou", "colour_error")),
    "subject": Task("K reference images of one subject plus a prompt -> images (DreamBench)", "images",
                    ("fid", "kid", "clip_i", "clip_t", "attributes", "subject_iou", "colour_error")),
    # No image prompt: metrics that compare with one (lpips, clip_i, subject_iou, colour_error) do not apply.
    "text2image": Task("a caption -> images (GenEval-style compositional check in the mini world)", None,
                       ("fid", "kid", "clip_t", "attributes")),
}


def check_task_metrics(task: str, metrics: list[str]) -> None:
    if task not in TASKS:
        raise ValueError(f"config key tasks.{task}: unknown task; known: {', '.join(TASKS)}")
    for metric in metrics:
        if metric not in TASKS[task].metrics:
            raise ValueError(f"config key tasks.{task}.metrics: {metric!r} does not apply to {task} "
                             f"(it takes {', '.join(TASKS[task].metrics)})")
