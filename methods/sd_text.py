"""Text-to-image with a diffusers Stable Diffusion pipeline: the ``text2image`` method.

``pretrained`` is a local ``StableDiffusionPipeline`` folder (the mini world's
mini SD, or any SD 1.x folder) or a Hub id. The caption is
``request.condition["prompt"]``; sampling is DDIM with classifier-free guidance.

Randomness comes only from ``request.seed``: one ``torch.Generator`` per
request draws that image's initial latents.

**CPU generates one request at a time.** Measured with the tests' tiny random
pipeline (float32, 4 DDIM steps, guidance 7.5, six prompts): each request
generated alone and inside the batch of six gave float outputs that differ by
up to 1.7e-6; after rounding to uint8, 3 of 73,728 values changed with one
thread (none with two, by luck), and in the tests' 2-step setting the bytes
differ too. CPU matrix kernels sum in a different order for different batch
shapes, so a batched image would depend on which shard and batch its item
lands in. With a batch of one, every image is a function of its request alone.
On a GPU the requests run in batches of ``batch_size`` for speed; there the
low bits can depend on the batch's make-up (cuBLAS picks kernels by shape),
which is fixed for a given suite configuration (items sorted per shard).

Words the tokenizer does not hold as one vocabulary token are logged as a
warning per item. CLIP's byte-level BPE has no effective unknown token: such a
word is split into characters or sub-words (never the unknown token), which the mini
world's tokenizer (one token per caption word) never does for a word it knows.
The caption is still generated. For a Hub tokenizer (49k tokens), a rare word
split into sub-words is reported too. Captions longer than the text encoder's
limit are truncated by the pipeline; that is logged as a warning as well.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ipbench.imageset import Request
from methods import register_method
from methods.base import Method

log = logging.getLogger("ipbench.methods.sd_text")

DEFAULTS = {
    "pretrained": None,
    "num_inference_steps": 20,
    "guidance_scale": 7.5,
    "scheduler": "ddim",
    "batch_size": 16,
    "negative_prompt": "",
}
SCHEDULERS = ("ddim",)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def _key(name: str) -> str:
    return f"config key methods.sd_text.params.{name}"


def check_params(params: dict | None) -> dict:
    """``params`` over the defaults, checked: unknown keys and bad values name their config key."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{_key(unknown[0])}: unknown parameter (known: {', '.join(DEFAULTS)})")
    merged = {**DEFAULTS, **params}
    if not isinstance(merged["pretrained"], str) or not merged["pretrained"]:
        raise ValueError(f"{_key('pretrained')}: required, a local StableDiffusionPipeline folder or Hub id")
    for name in ("num_inference_steps", "batch_size"):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{_key(name)}: expected an integer >= 1, got {value!r}")
    if isinstance(merged["guidance_scale"], bool) or not isinstance(merged["guidance_scale"], (int, float)):
        raise ValueError(f"{_key('guidance_scale')}: expected a number, got {merged['guidance_scale']!r}")
    merged["guidance_scale"] = float(merged["guidance_scale"])
    if merged["scheduler"] not in SCHEDULERS:
        raise ValueError(f"{_key('scheduler')}: {merged['scheduler']!r} is not supported "
                         f"(use {', '.join(SCHEDULERS)})")
    if not isinstance(merged["negative_prompt"], str):
        raise ValueError(f"{_key('negative_prompt')}: expected a string, got {merged['negative_prompt']!r}")
    return merged


def _local_folder(pretrained: str) -> Path | None:
    """The pipeline folder ``pretrained`` names, or None for a Hub id."""
    path = Path(pretrained).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ValueError(f"{_key('pretrained')}: {path} has no model_index.json "
                             "(not a diffusers pipeline folder)")
        return path
    looks_like_path = path.is_absolute() or pretrained.startswith((".", "~")) or pretrained.count("/") > 1
    if path.exists() or looks_like_path:
        raise ValueError(f"{_key('pretrained')}: {pretrained} is not a pipeline folder")
    return None


@register_method
class SDText(Method):
    name = "sd_text"
    tasks = ("text2image",)
    uses_gpu = True

    def __init__(self, model_dir: Path, params: dict | None = None, device: str = "cpu"):
        super().__init__(model_dir, params, device)
        self.settings = check_params(self.params)
        self._pipe = None

    @classmethod
    def prepare(cls, out_dir: Path, params: dict) -> dict:
        """Read the pipeline's model_index.json and record where the weights are; copies nothing."""
        pretrained = check_params(params)["pretrained"]
        folder = _local_folder(pretrained)
        if folder is not None:
            from metrics.weights import sha256_file

            index = json.loads((folder / "model_index.json").read_text())
            files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
            weights = {str(path.relative_to(folder)): sha256_file(path) for path in files}
            if not weights:
                raise ValueError(f"{_key('pretrained')}: no weight files "
                                 f"({', '.join(WEIGHT_SUFFIXES)}) in {folder}")
            facts = {"source": "local", "path": str(folder.resolve()), "weights_sha256": weights}
        else:
            from huggingface_hub import hf_hub_download

            index_path = Path(hf_hub_download(pretrained, "model_index.json"))
            index = json.loads(index_path.read_text())
            facts = {"source": "hub", "repo_id": pretrained}
            if index_path.parent.parent.name == "snapshots":  # the cache names snapshots by commit
                facts["revision"] = index_path.parent.name
        components = {name: value for name, value in index.items() if not name.startswith("_")}
        return {"pretrained": pretrained, **facts, "pipeline_class": index.get("_class_name"),
                "pipeline_diffusers_version": index.get("_diffusers_version"), "components": components}

    def _pipeline(self):
        if self._pipe is None:
            import torch
            from diffusers import DDIMScheduler, StableDiffusionPipeline

            pipe = StableDiffusionPipeline.from_pretrained(self.settings["pretrained"], dtype=torch.float32,
                                                           safety_checker=None)
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self.device)
        return self._pipe

    def check_prompts(self, requests: list[Request]) -> None:
        """Warn, per item, about words the tokenizer does not know and about captions it will truncate."""
        from ipbench.world.tokenizer import unknown_words

        tokenizer = self._pipeline().tokenizer
        vocab = tokenizer.get_vocab()
        limit = tokenizer.model_max_length
        seen = set()
        for request in requests:
            if request.item_id in seen:
                continue
            seen.add(request.item_id)
            prompt = request.condition["prompt"]
            unknown = unknown_words(vocab, prompt)
            if unknown:
                log.warning("item %s: words not in the tokenizer's vocabulary (split into pieces): %s; "
                            "generating anyway", request.item_id, ", ".join(unknown))
            ids = tokenizer(prompt, truncation=False).input_ids
            if len(ids) > limit:
                dropped = tokenizer.decode(ids[limit - 1:-1], skip_special_tokens=True)
                log.warning("item %s: caption is %d tokens, the text encoder takes %d; dropped: %r",
                            request.item_id, len(ids), limit, dropped)

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        import torch

        pipe = self._pipeline()
        self.check_prompts(requests)
        options = self.settings
        # One request at a time on CPU: see the module docstring (batched CPU output depends on the batch).
        batch_size = options["batch_size"] if str(self.device).startswith("cuda") else 1
        images = []
        for start in range(0, len(requests), batch_size):
            batch = requests[start:start + batch_size]
            generators = [torch.Generator(self.device).manual_seed(request.seed) for request in batch]
            negative = [options["negative_prompt"]] * len(batch) if options["negative_prompt"] else None
            with torch.inference_mode():
                out = pipe([request.condition["prompt"] for request in batch], negative_prompt=negative,
                           num_inference_steps=options["num_inference_steps"],
                           guidance_scale=options["guidance_scale"], generator=generators,
                           output_type="np").images
            images.extend(np.clip(np.round(np.asarray(out, dtype=np.float64) * 255), 0, 255).astype(np.uint8))
        return images
