"""DeepFloyd IF / Imagen: a pixel-space cascade conditioned on a frozen text-only encoder.

Stage I (``IFPipeline``) samples a low-resolution image from the text, stage II
(``IFSuperResolutionPipeline``) upsamples it, conditioned on the same text
states and on the stage-I image noise-augmented at ``noise_level``. In the mini
suite the parts are artifacts the DAG trains (``trained:t5_text``, a small T5
trained only on captions; ``trained:if_base``, 32x32; ``trained:if_sr``,
32->64), assembled by ``prepare`` into two standard pipeline folders; in the
paper suite ``stage_1``/``stage_2`` are DeepFloyd's Hub folders. The text is
encoded once with stage I's encoder and both stages get the states, as IF's
own two-stage usage does. ``dynamic_thresholding`` is Imagen's sampler
(x0 clipped at its ``thresholding_ratio`` percentile, then rescaled); off, x0 is
clipped statically to [-1, 1]. Prompts longer than the encoder's 77 tokens are
truncated, and logged per item.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ipbench.diffusion import pipelines, sampling
from ipbench.imageset import Request
from ipbench.params import Param
from ipbench.training.registry import Artifact, register_artifact
from methods import register_method
from methods.base import Method

T5_DEFAULTS = {"steps": 3000, "batch_size": 512, "lr": 1e-3, "seed": 6, "caption_variants": 4, "objective": "span_corruption",
               "architecture": {}, "time_limit_s": None, "evaluation": {"n": 1000}}
STAGE_DEFAULTS = {"steps": 6000, "batch_size": 512, "lr": 5e-4, "seed": 7, "caption_dropout": 0.1,
                  "min_snr_gamma": 5.0, "ema_decay": 0.999, "caption_variants": 8, "architecture": {},
                  "low_resolution": 32, "max_noise_level": 500, "prediction_type": "v_prediction", "time_limit_s": None, "compile": False,
                  "init_from": None,
                  "evaluation": {"n": 256, "guidance_scales": [1.0, 4.0, 7.0], "num_inference_steps": 20,
                                 "thresholding": [True, False], "noise_level": 100}}
WORLD_INPUTS = {"train_set": "data:train_set", "shape_cnn": "world:shape_cnn"}

register_artifact(Artifact(
    "t5_text", "methods.if_cascade:train_t5_text", inputs={"train_set": "data:train_set"}, defaults=T5_DEFAULTS,
    description="text-only T5 encoder, span corruption on the world's captions (no images)"))
for _encoder, _source, _suffix in (("T5", "trained:t5_text", ""), ("conditioning CLIP", "world:cond_clip", "_clip")):
    register_artifact(Artifact(
        f"if_base{_suffix}", "methods.if_cascade:train_if_base", inputs={**WORLD_INPUTS, "text_encoder": _source},
        defaults=STAGE_DEFAULTS, description=f"IF stage I: 32x32 pixel UNet on the {_encoder} text states"))
    register_artifact(Artifact(
        f"if_sr{_suffix}", "methods.if_cascade:train_if_sr", inputs={**WORLD_INPUTS, "text_encoder": _source},
        defaults=STAGE_DEFAULTS, description=f"IF stage II: 32->64 super-resolution UNet on the {_encoder} text states"))


def train_t5_text(out_dir, inputs, settings, device, subject=None, threads=1) -> dict:
    from ipbench.world.render import held_out_scenes
    from ipbench.world.t5_text import evaluate_t5, train_t5
    from ipbench.world.train_data import load_npz

    settings = dict(settings)
    held_out = held_out_scenes(settings.pop("evaluation")["n"], seed=1)
    scenes = load_npz(inputs["train_set"], workers=threads)["scenes"]
    record = train_t5(out_dir, scenes, device=device, held_out=held_out, workers=threads - 1, **settings)
    return {**record, "validation": {**{k: v for k, v in record["history"][-1].items() if k.startswith("val_")},
                                     **evaluate_t5(out_dir, held_out, device=device)}}


def _train_stage(stage, out_dir, inputs, settings, device, threads):
    from ipbench.world.cascade import evaluate_stage, train_stage
    from ipbench.world.train_data import load_npz

    settings = dict(settings)
    evaluation = settings.pop("evaluation")
    settings.pop("init_from")  # a source: the DAG resolved it into inputs["init"]
    if stage == "base":
        settings.pop("max_noise_level")  # the base stage has no image input to augment
    data = load_npz(inputs["train_set"], workers=threads)
    record = train_stage(out_dir, stage, inputs["text_encoder"], data, device=device, init_dir=inputs.get("init"),
                         **settings)
    validation = evaluate_stage(out_dir, inputs["text_encoder"], inputs["shape_cnn"], device=device, **evaluation)
    return {**record, "validation": validation}


def train_if_base(out_dir, inputs, settings, device, subject=None, threads=1) -> dict:
    return _train_stage("base", out_dir, inputs, settings, device, threads)


def train_if_sr(out_dir, inputs, settings, device, subject=None, threads=1) -> dict:
    return _train_stage("sr", out_dir, inputs, settings, device, threads)


def _unknown_t5_words(tokenizer):
    """Words the T5 vocabulary has no piece for (they become <unk>)."""
    unk = tokenizer.unk_token_id
    return lambda text: [word for word in text.split() if unk in tokenizer(word, add_special_tokens=False).input_ids]


@register_method
class IFCascade(Method):
    name = "if_cascade"
    tasks = ("text2image",)
    uses_gpu = True
    params = {
        "text_encoder": Param("trained:t5_text", str, model=True, nullable=True,
                              help="the text encoder the stages were trained on (null: stage_1's own, as in a Hub folder)"),
        "stage_1": Param("trained:if_base", str, model=True, help="base stage: a trained UNet, an IFPipeline folder or Hub id"),
        "stage_2": Param("trained:if_sr", str, model=True,
                         help="super-resolution stage: a trained UNet, an IFSuperResolutionPipeline folder or Hub id"),
        "num_inference_steps_1": Param(25, int, min=1, help="stage I denoising steps"),
        "num_inference_steps_2": Param(25, int, min=1, help="stage II denoising steps"),
        "guidance_scale_1": Param(7.0, float, min=0.0, help="stage I classifier-free guidance (IF: 7)"),
        "guidance_scale_2": Param(4.0, float, min=0.0, help="stage II classifier-free guidance (IF: 4)"),
        "noise_level": Param(100, int, min=0, max=999, help="augmentation noise on the stage I image (IF-II: 250)"),
        "sr_strength": Param(1.0, float, min=0.0, max=1.0,
                             help="where stage II starts: 1 samples from noise (IF-II); below 1, the stage I image "
                                  "upsampled and noised to this fraction of the schedule (IFImg2ImgSuperResolutionPipeline)"),
        "dynamic_thresholding": Param(True, bool, help="Imagen's dynamic thresholding; false: static clipping"),
        "thresholding_ratio": Param(0.95, float, min=0.5, max=1.0, help="percentile of |x0| that sets the threshold"),
        "sample_max_value": Param(1.5, float, min=1.0, help="largest threshold dynamic thresholding may use"),
        "negative_prompt": Param("", str),
    }

    def __init__(self, model_dir: Path, params: dict | None = None, device: str = "cpu", key: str | None = None):
        super().__init__(model_dir, params, device, key)
        self.log = logging.getLogger(f"ipbench.methods.{self.name}")
        self._stages = None
        strength, steps = self.settings["sr_strength"], self.settings["num_inference_steps_2"]
        if strength < 1.0 and int(steps * strength) < 1:
            raise ValueError(f"methods.{key or self.name}.params: sr_strength {strength} of num_inference_steps_2 "
                             f"{steps} leaves no stage II step; raise one of them")

    @classmethod
    def prepare(cls, out_dir: Path, settings: dict) -> dict:
        """Assemble trained UNets into stage folders under ``out_dir``; record each stage's weights or revision."""
        from ipbench.io import atomic_directory
        from ipbench.world.cascade import assemble_stage, check_encoder, stage_facts

        facts = {}
        for key in ("stage_1", "stage_2"):
            source, config_key = settings[key], f"config key methods.{cls.name}.params.{key}"
            if stage_facts(source) and not (Path(source) / "model_index.json").is_file():
                encoder = settings["text_encoder"]
                if encoder is None:
                    raise ValueError(f"{config_key}: {source} is a trained UNet; text_encoder must name the encoder "
                                     "it was trained on")
                check_encoder(source, encoder, f"config key methods.{cls.name}.params.text_encoder")
                with atomic_directory(Path(out_dir) / key) as tmp:
                    assemble_stage(tmp, source, encoder)
                source = str(Path(out_dir) / key)
            facts[key] = pipelines.describe_source(source, config_key)
        return facts

    def _source(self, key: str) -> str:
        assembled = self.model_dir / key
        return str(assembled) if (assembled / "model_index.json").is_file() else self.settings[key]

    def stages(self):
        """(stage I, stage II) pipelines, loaded once, with the configured sampler."""
        if self._stages is None:
            from diffusers import IFPipeline, IFSuperResolutionPipeline

            none = {"watermarker": None}
            first = pipelines.load_pipeline(IFPipeline, self._source("stage_1"), self.device, None, **none)
            second = pipelines.load_pipeline(IFSuperResolutionPipeline, self._source("stage_2"), self.device, None,
                                             text_encoder=None, tokenizer=None, **none)
            if self.settings["sr_strength"] < 1.0:  # the same components, started from the stage I image
                from diffusers import IFImg2ImgSuperResolutionPipeline

                second = IFImg2ImgSuperResolutionPipeline(**second.components)
                second.set_progress_bar_config(disable=True)
            for pipe in (first, second):
                pipe.scheduler = self._scheduler(pipe.scheduler.config)
            self._stages = first, second
        return self._stages

    def _scheduler(self, folder_config):
        """The folder's DDPM noise schedule and variance type, with the configured x0 clipping."""
        from diffusers import DDPMScheduler

        return DDPMScheduler.from_config(folder_config, thresholding=self.settings["dynamic_thresholding"],
                               dynamic_thresholding_ratio=self.settings["thresholding_ratio"],
                               sample_max_value=self.settings["sample_max_value"], clip_sample=True,
                               clip_sample_range=1.0)

    def encode(self, requests: list[Request]):
        """(prompt states, negative states), from stage I's encoder, shared by both stages."""
        from ipbench.world.cascade import encode_prompts, is_t5

        first, _ = self.stages()
        tokenizer, encoder = first.tokenizer, first.text_encoder
        limit = 77 if is_t5(encoder) else tokenizer.model_max_length
        sampling.check_prompts(tokenizer, requests, self.log, limit=limit,
                               unknown=_unknown_t5_words(tokenizer) if is_t5(encoder) else None)
        prompts = [request.condition["prompt"] for request in requests]
        states = encode_prompts(tokenizer, encoder, prompts, self.device)
        negative = encode_prompts(tokenizer, encoder, [self.settings["negative_prompt"]], self.device)
        return states, negative.expand_as(states)

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        import torch

        from ipbench.world.cascade import check_stage_input, upsample_condition

        first, second = self.stages()
        generators = sampling.generators(requests, self.device)  # each request's stream runs through both stages
        with torch.inference_mode():
            states, negative = self.encode(requests)
            low = first(prompt_embeds=states, negative_prompt_embeds=negative, generator=generators,
                        num_inference_steps=self.settings["num_inference_steps_1"],
                        guidance_scale=self.settings["guidance_scale_1"], output_type="pt").images
            check_stage_input(tuple(low.shape[-2:]), self._source("stage_2"))
            start = {}
            if self.settings["sr_strength"] < 1.0:
                start = {"original_image": upsample_condition(low, second.unet.config.sample_size),
                         "strength": self.settings["sr_strength"]}
            out = second(image=low, prompt_embeds=states, negative_prompt_embeds=negative, generator=generators,
                         num_inference_steps=self.settings["num_inference_steps_2"],
                         guidance_scale=self.settings["guidance_scale_2"], noise_level=self.settings["noise_level"],
                         output_type="np", **start).images
        return sampling.to_uint8(out)
