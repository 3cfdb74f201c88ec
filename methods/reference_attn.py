"""Reference-only attention: the image prompt steers plain Stable Diffusion through its self-attention.

Each denoising step first runs the UNet on the reference (the image prompt's VAE
posterior mean, noised to the current timestep with a noise fixed per request)
with the same text embeddings; that "write" pass stores every self-attention
layer's input tokens. The real "read" pass then computes each self-attention
(attn1 of every transformer block) with keys and values from its own tokens
followed by the stored reference tokens, so the image attends to the reference.
Optionally (``adain``) each ResnetBlock2D output's per-channel mean and std are
matched to the reference pass's. No weights beyond the pipeline's. Cost: one
extra UNet pass per step and reference, so about 2x ``sd_text`` with one reference.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np

from ipbench.diffusion.image_prompt import ImagePromptMethod, one_of, prompt_image_paths
from ipbench.imageset import Request
from ipbench.paper_data import center_crop_resize
from ipbench.params import Param
from methods import register_method
from metrics.images import load_rgb

ADAIN_EPS = 1e-5  # GroupNorm's default epsilon


class ReferenceSelfAttention:
    """attn1 processor: plain self-attention, except while a ``ReferenceBank`` writes (stores) or reads.

    Read: keys and values come from [own tokens; reference tokens] along the token axis. Under
    classifier-free guidance the first ``bank.uncond`` rows (the unconditional half) are blended,
    ``style_fidelity * self_only + (1 - style_fidelity) * with_reference``.
    """

    def __init__(self, bank: ReferenceBank, name: str):
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.bank, self.name, self.plain = bank, name, AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
        import torch

        bank = self.bank
        if bank.mode == "write":
            bank.tokens.setdefault(self.name, []).append(hidden_states)
        if bank.mode != "read":
            return self.plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        # A self-attention layer given encoder_hidden_states takes its keys and values from them.
        context = torch.cat([hidden_states, *bank.tokens[self.name]], dim=1)
        out = self.plain(attn, hidden_states, context, attention_mask, temb)
        uncond, fidelity = bank.uncond, bank.style_fidelity
        if uncond and fidelity > 0:
            mask = None if attention_mask is None else attention_mask[:uncond]
            own = self.plain(attn, hidden_states[:uncond], None, mask, temb)
            out = torch.cat([fidelity * own + (1 - fidelity) * out[:uncond], out[uncond:]])
        return out


class ReferenceBank:
    """The reference pass's tokens (and AdaIN statistics) for one pipeline call, and the hooks that fill them.

    ``attach`` installs the processors and hooks once; outside ``session`` they compute plain SD.
    Rows align with the UNet batch: the write pass runs the references with the real pass's
    ``encoder_hidden_states``, so with CFG both are [uncond B; cond B].
    """

    def __init__(self, style_fidelity: float, adain: bool):
        self.style_fidelity, self.adain = style_fidelity, adain
        self.mode = None  # None (plain SD), "write" (reference pass) or "read" (real pass)
        self.latents = self.noise = None  # per reference slot: (B, C, h, w), one row per request
        self.uncond = 0  # leading unconditional rows of the current UNet batch
        self.tokens, self.stats = {}, {}
        self.scheduler = None
        self.restore, self.handles = [], []

    def attach(self, pipe) -> None:
        from diffusers.models.attention_processor import Attention
        from diffusers.models.resnet import ResnetBlock2D

        self.detach()
        self.scheduler = pipe.scheduler
        for name, module in pipe.unet.named_modules():
            if isinstance(module, Attention) and name.endswith("attn1") and not module.is_cross_attention:
                self.restore.append((module, module.processor))
                module.set_processor(ReferenceSelfAttention(self, name))
            elif self.adain and isinstance(module, ResnetBlock2D):
                self.handles.append(module.register_forward_hook(partial(self.match_statistics, name)))
        self.handles.append(pipe.unet.register_forward_pre_hook(self.write_pass, with_kwargs=True))

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        for module, processor in self.restore:
            module.set_processor(processor)
        self.restore, self.handles = [], []

    @contextmanager
    def session(self, latents: list, noise: list):
        """Reference latents and their fixed noise (one tensor per reference slot) for one pipeline call."""
        self.latents, self.noise = latents, noise
        try:
            yield
        finally:
            self.latents = self.noise = self.mode = None
            self.uncond = 0
            self.tokens, self.stats = {}, {}

    def write_pass(self, unet, args, kwargs):
        """UNet forward pre-hook: run the noised references through ``unet`` before the real pass."""
        import torch

        if self.latents is None or self.mode == "write":  # not this method's call, or the write pass itself
            return None
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        rest = {key: value for key, value in kwargs.items() if key not in ("sample", "timestep")}
        batch = self.latents[0].shape[0]
        copies, leftover = divmod(sample.shape[0], batch)
        if leftover or copies not in (1, 2):
            raise RuntimeError(f"UNet batch of {sample.shape[0]} rows for {batch} requests: expected 1x or 2x (CFG)")
        self.uncond = batch if copies == 2 else 0
        self.tokens, self.stats = {}, {}
        step = torch.as_tensor(timestep, device=sample.device).reshape(-1)[:1].long()
        self.mode = "write"
        try:
            for latents, noise in zip(self.latents, self.noise):
                noisy = self.scheduler.scale_model_input(self.scheduler.add_noise(latents, noise, step), timestep)
                unet(torch.cat([noisy] * copies), timestep, **rest)
        finally:
            self.mode = "read"
        return None

    def match_statistics(self, name, module, args, output):
        """ResnetBlock2D forward hook (``adain``): per-channel mean and std over space matched to the reference's."""
        import torch

        if self.mode == "write":
            self.stats.setdefault(name, []).append((output.mean((2, 3), keepdim=True),
                                                    output.square().mean((2, 3), keepdim=True)))
            return None
        if self.mode != "read":
            return None
        # Pooled over all reference slots: every slot has the same spatial size.
        means, squares = (torch.stack(values).mean(0) for values in zip(*self.stats[name]))
        ref_std = (squares - means.square()).clamp_min(0).add(ADAIN_EPS).sqrt()
        mean, var = output.mean((2, 3), keepdim=True), output.var((2, 3), keepdim=True, correction=0)
        matched = (output - mean) / (var + ADAIN_EPS).sqrt() * ref_std + means
        uncond, fidelity = self.uncond, self.style_fidelity
        if uncond and fidelity > 0:
            matched = torch.cat([fidelity * output[:uncond] + (1 - fidelity) * matched[:uncond], matched[uncond:]])
        return matched


@register_method
class ReferenceAttention(ImagePromptMethod):
    name = "reference_attn"
    params = {
        **ImagePromptMethod.params,
        "style_fidelity": Param(0.5, float, "under CFG, the unconditional half's share of plain self-attention "
                                "(and plain features, with adain); the conditional half always uses the reference; "
                                "1: CFG also amplifies the reference", min=0.0, max=1.0),
        "adain": Param(False, bool, "also match each UNet ResnetBlock2D output's per-channel mean and std over "
                       "space to the reference pass's"),
        "references": Param("one", str, "with K references (subject): 'one' takes one chosen by the seed, 'all' "
                            "runs all K through the reference pass and attends to all their tokens (K+1 UNet "
                            "passes per step)", choices=("one", "all")),
    }

    def __init__(self, model_dir: Path, params: dict | None = None, device: str = "cpu", key: str | None = None):
        super().__init__(model_dir, params, device, key)
        self.bank = ReferenceBank(self.settings["style_fidelity"], self.settings["adain"])

    def setup(self, pipe) -> None:
        self.bank.attach(pipe)

    def reference_latents(self, request: Request, data_dir: Path):
        """(references, C, h, w): VAE posterior means x scaling factor, encoded one by one (batch-invariant)."""
        import torch
        from PIL import Image

        pipe = self.pipeline()
        paths = prompt_image_paths(request, self.name)
        if self.settings["references"] == "one":
            paths = [paths[one_of(request, len(paths))]]
        size = pipe.unet.config.sample_size * pipe.vae_scale_factor
        latents = []
        for path in paths:
            image = Image.fromarray(center_crop_resize(load_rgb(Path(data_dir) / path).array, size))
            pixels = pipe.image_processor.preprocess(image).to(self.device, pipe.vae.dtype)
            latents.append(pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor)
        return torch.cat(latents)

    def reference_noise(self, request: Request, shape):
        """The request's fixed reference noise: its own generator, seeded apart from the sampling one."""
        import torch

        generator = torch.Generator(self.device).manual_seed((request.seed + 1) % 2**63)
        return torch.randn(shape, generator=generator, device=self.device)

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            latents = [self.reference_latents(request, data_dir) for request in requests]
            noise = [self.reference_noise(request, lat.shape) for request, lat in zip(requests, latents)]
        images = [None] * len(requests)
        # Requests with as many references share a call: the bank holds one token count per call.
        for count in sorted({len(lat) for lat in latents}):
            rows = [i for i, lat in enumerate(latents) if len(lat) == count]
            slots = [torch.stack([latents[i][k] for i in rows]) for k in range(count)]
            slot_noise = [torch.stack([noise[i][k] for i in rows]) for k in range(count)]
            with self.bank.session(slots, slot_noise):
                for i, image in zip(rows, super().generate([requests[i] for i in rows], data_dir)):
                    images[i] = image
        return images
