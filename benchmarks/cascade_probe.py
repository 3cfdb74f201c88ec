"""Where the IF cascade's stages lose shape: samplers and step counts, stage II's x0 per noise level, and
stage II started part of the way from the upsampled image (CPU, shipped weights, fresh test scenes).

    python3 benchmarks/cascade_probe.py samplers --stage if_base --run ddpm:16:7 --run dpm:30:7
    python3 benchmarks/cascade_probe.py samplers --stage if_sr --run ddpm:8:1 --run ddpm:16:1:0.15
    python3 benchmarks/cascade_probe.py x0 --stage if_sr

``samplers``: each ``--run SAMPLER:STEPS:GUIDANCE[:STRENGTH]`` (``ddpm``, the stage folders' sampler, or
``dpm``, DPM-Solver++ 2M with the same dynamic thresholding) samples the stage on ``--n`` test captions
and reads the analyzers: stage I upsampled to 64 px, stage II from the test renders downsampled to
32 px (so stage II is judged alone), with PSNR to the renders. STRENGTH (stage II only) starts it from
the bilinear upsampling noised to that fraction of the schedule (``IFImg2ImgSuperResolutionPipeline``).
``x0``: stage II's x0 estimate from the true 64 px image noised to timestep t, with the true 32 px image
as its condition, against the condition's bilinear upsampling (what no model would give).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ipbench.training.loop import to_unit_range  # noqa: E402
from ipbench.world import cascade  # noqa: E402
from ipbench.world.mini_sd import _attribute_summary, _shape_reader  # noqa: E402
from ipbench.world.render import caption, held_out_scenes, render  # noqa: E402

CHECKPOINTS = REPO / "data" / "checkpoints"
TEXT_ENCODERS = {"if_base": "t5_text", "if_sr": "t5_text", "if_base_clip": "cond_clip", "if_sr_clip": "cond_clip"}


def psnr(images: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean PSNR in dB of [-1, 1] images (peak-to-peak 2)."""
    error = ((images.clamp(-1, 1) - truth) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(4.0 / error.clamp(min=1e-12))).mean())


def test_scenes(n: int, encoder_dir: Path):
    scenes = held_out_scenes(n, 0)
    renders = torch.from_numpy(np.stack([render(scene) for scene in scenes]))
    tokenizer, text_encoder = cascade.load_text_encoder(encoder_dir)
    states = cascade.encode_prompts(tokenizer, text_encoder, [caption(scene) for scene in scenes], "cpu")
    empty = cascade.encode_prompts(tokenizer, text_encoder, [""], "cpu").expand_as(states)
    return scenes, renders, states, empty


def samplers(args) -> None:
    from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler, IFImg2ImgSuperResolutionPipeline

    unet_dir, encoder_dir = CHECKPOINTS / args.stage, CHECKPOINTS / TEXT_ENCODERS[args.stage]
    facts = cascade.stage_facts(unet_dir)
    scenes, renders, states, empty = test_scenes(args.n, encoder_dir)
    reader = _shape_reader(CHECKPOINTS / "shape_cnn", "cpu")
    with tempfile.TemporaryDirectory() as scratch:
        pipe = DiffusionPipeline.from_pretrained(cascade.assemble_stage(scratch, unet_dir, encoder_dir),
                                                 dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    partway = IFImg2ImgSuperResolutionPipeline(**pipe.components) if facts["stage"] == "sr" else None
    low = cascade.downsample(renders, facts["low_resolution"])
    ddpm = cascade.scheduler(True, facts["prediction_type"])
    for run in args.run:
        name, steps, guidance, *strength = run.split(":")
        pipe.scheduler = ddpm if name == "ddpm" else DPMSolverMultistepScheduler.from_config(
            ddpm.config, algorithm_type="dpmsolver++", solver_order=2)
        started, images = time.perf_counter(), []
        for start in range(0, args.n, 64):
            part = slice(start, start + 64)
            call = {"prompt_embeds": states[part], "negative_prompt_embeds": empty[part], "output_type": "pt",
                    "num_inference_steps": int(steps), "guidance_scale": float(guidance),
                    "generator": [torch.Generator().manual_seed(k) for k in range(start, min(start + 64, args.n))]}
            runner = pipe
            if facts["stage"] == "sr":
                call.update(image=low[part], noise_level=args.noise_level)
                if strength:
                    partway.scheduler = pipe.scheduler
                    call.update(original_image=cascade.upsample_condition(low[part], 64), strength=float(strength[0]))
                    runner = partway
            out = runner(**call).images.float().clamp(-1, 1)
            images.append(cascade.upsample_condition(out, 64) if facts["stage"] == "base" else out)
        images = torch.cat(images)
        pixels = ((images + 1) * 127.5).round().byte().permute(0, 2, 3, 1)
        row = _attribute_summary(list(pixels.numpy()), scenes, reader)
        if facts["stage"] == "sr":
            row["psnr"] = psnr(images, to_unit_range(renders))
        print(json.dumps({"stage": args.stage, "run": run, "n": args.n, "seconds": round(time.perf_counter() - started, 1),
                          **{k: round(v, 4) for k, v in row.items()}}), flush=True)


@torch.no_grad()
def x0(args) -> None:
    from diffusers import DDPMScheduler, UNet2DConditionModel

    unet_dir, encoder_dir = CHECKPOINTS / args.stage, CHECKPOINTS / TEXT_ENCODERS[args.stage]
    if cascade.stage_facts(unet_dir)["stage"] != "sr":
        raise SystemExit(f"{args.stage}: x0 probes a super-resolution stage")
    _, renders, states, _ = test_scenes(args.n, encoder_dir)
    unet = UNet2DConditionModel.from_pretrained(unet_dir, dtype=torch.float32).eval()
    noising = DDPMScheduler(**cascade.PIXEL_SCHEDULE)
    truth = to_unit_range(renders)
    condition = cascade.upsample_condition(cascade.downsample(renders, 32), 64)
    generator = torch.Generator().manual_seed(0)
    levels = torch.full((args.n,), args.noise_level)
    if args.noise_level:
        condition = noising.add_noise(condition, torch.randn(condition.shape, generator=generator), levels)
    print(json.dumps({"bilinear_psnr": psnr(cascade.upsample_condition(cascade.downsample(renders, 32), 64), truth)}))
    for t in args.timesteps:
        steps = torch.full((args.n,), t)
        noisy = noising.add_noise(truth, torch.randn(truth.shape, generator=generator), steps)
        v = unet(torch.cat([noisy, condition], 1), steps, encoder_hidden_states=states, class_labels=levels).sample[:, :3]
        alpha = noising.alphas_cumprod[t]
        estimate = alpha.sqrt() * noisy - (1 - alpha).sqrt() * v
        print(json.dumps({"t": t, "snr": float(alpha / (1 - alpha)), "x0_psnr": round(psnr(estimate, truth), 2)}),
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probe", choices=("samplers", "x0"))
    parser.add_argument("--stage", choices=sorted(TEXT_ENCODERS), required=True)
    parser.add_argument("--run", action="append", default=[], help="SAMPLER:STEPS:GUIDANCE[:STRENGTH]")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--noise-level", type=int, default=100, help="stage II's augmentation of its condition")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[20, 100, 250, 500, 750, 950])
    args = parser.parse_args()
    torch.set_num_threads(2)
    (samplers if args.probe == "samplers" else x0)(args)


if __name__ == "__main__":
    main()
