"""The fast generation path: the UNet and VAE in bfloat16 inside a float32 pipeline.

``accelerate`` is applied by every ``DiffusersMethod`` after its add-ons are loaded. With
``precision: auto`` it changes nothing on a CPU (the default benchmark's images stay byte-identical:
bfloat16 convolutions are slower there) and, on CUDA, casts the UNet and the VAE to bfloat16. Only
those two run in reduced precision: hooks cast their floating inputs to bfloat16 and their outputs
back to float32, so the text and image encoders, the latents, the
classifier-free guidance sum and the DDIM updates stay float32 and each request keeps its own seeded
float32 noise. Nothing approximates the method: every step, every UNet evaluation is still computed.
diffusers' default attention is already PyTorch's SDPA, which picks flash attention for bfloat16 on
GPUs that have it; the pipeline already runs the conditional and unconditional halves as one batch and
decodes the whole batch at once. ``compile`` adds ``torch.compile`` of the UNet (about a minute per
batch shape and process for SD1.5 on an H200, then 1.36x the images/s: benchmarks/README.md).
``fuse_qkv`` computes each attention's query, key and value projections as one matrix product (the same
sums, in one kernel); ``compile_tuning`` sets inductor's options of diffusers' SDXL speed recipe before the
compile. Both are measured one at a time by benchmarks/gpu_generation.py.
"""
from __future__ import annotations

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
# Memory format of the reduced-precision UNet and VAE. Contiguous is the default: on an H200, channels_last
# made SD1.5's UNet slower (2.90 against 3.29 img/s), its layout copies taking a quarter of the GPU time
# (benchmarks/README.md, each change alone).
MEMORY_FORMATS = ("contiguous", "channels_last")
# torch.compile modes for the UNet; "off" is the default until GPU numbers show the compile time pays
# (benchmarks/README.md). "reduce-overhead" and "max-autotune" also capture CUDA graphs.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Inductor options of diffusers' "accelerate inference" recipe: 1x1 convolutions as matrix products, tile
# sizes tuned by coordinate descent, and no epilogue fusion (which those tuned kernels do not need).
COMPILE_TUNING = {"conv_1x1_as_mm": True, "coordinate_descent_tuning": True, "epilogue_fusion": False,
                  "coordinate_descent_check_all_directions": True}
_untuned: dict = {}  # inductor's own values of those options, read before the first change


def resolve_precision(precision: str, device):
    """The weights' torch dtype for ``precision`` on ``device`` ("auto": bfloat16 on CUDA, float32 elsewhere)."""
    import torch  # here, not above: the DAG imports the methods' parameters without torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, precision)


def _cast(value, dtype, channels_last: bool):
    """Floating tensors in ``value`` (nested in tuples, lists, dicts) cast to ``dtype``; the rest as is."""
    import torch

    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return value
        if channels_last and value.dim() == 4:
            return value.to(dtype=dtype, memory_format=torch.channels_last)
        return value.to(dtype)
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(item, dtype, channels_last) for item in value)
    if isinstance(value, dict):  # also diffusers' BaseOutput, whose __setitem__ keeps its attributes in step
        for key in list(value):
            value[key] = _cast(value[key], dtype, channels_last)
        return value
    return value


def run_in(module, dtype, channels_last: bool) -> None:
    """Cast ``module`` to ``dtype`` and make it take and give float32: callers see a float32 module."""
    import torch

    module.to(dtype=dtype)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    module.register_forward_pre_hook(
        lambda _, args, kwargs: (_cast(args, dtype, channels_last), _cast(kwargs, dtype, channels_last)),
        with_kwargs=True)
    module.register_forward_hook(lambda _, args, output: _cast(output, torch.float32, False))


def fuse_qkv_projections(unet) -> None:
    """One projection matrix per attention (q, k, v fused; k, v for cross-attention), through diffusers.

    diffusers swaps every processor for its fused one, so a UNet whose processors are not the plain SDPA
    ones (IP-Adapter's, LoRA-free add-ons) is refused rather than silently losing them.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0

    others = sorted({type(p).__name__ for p in unet.attn_processors.values() if not isinstance(p, AttnProcessor2_0)})
    if others:
        raise ValueError(f"fuse_qkv replaces the UNet's attention processors; {', '.join(others)} would be lost "
                         "(set fuse_qkv: false for this method)")
    unet.fuse_qkv_projections()


def accelerate(pipe, device, precision: str = "auto", compile_mode: str = "off",
               memory_format: str = "contiguous", fuse_qkv: bool = False, compile_tuning: bool = False):
    """``pipe`` with its UNet and VAE in the precision asked for; unchanged for float32 without compile
    or fusion. ``compile_tuning`` sets inductor's process-wide options (COMPILE_TUNING; without it, a compile
    puts back inductor's own values). The compile is lazy, at the UNet's first call, so a pipeline compiles
    with the options of the last ``accelerate`` before that call."""
    if compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {compile_mode!r} is not one of {', '.join(COMPILE_MODES)}")
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory format {memory_format!r} is not one of {', '.join(MEMORY_FORMATS)}")
    import torch

    dtype = resolve_precision(precision, device)
    if fuse_qkv:  # before the cast, so the fused weights are cast with the rest
        fuse_qkv_projections(pipe.unet)
    if dtype != torch.float32:
        channels_last = memory_format == "channels_last"
        run_in(pipe.unet, dtype, channels_last)
        # AutoencoderKL.encode/decode are not forward(): its parts (encoder, decoder, (post_)quant_conv) are.
        for part in pipe.vae.children():
            run_in(part, dtype, channels_last)
    if compile_mode != "off":
        import torch._inductor.config as inductor

        _untuned.update({key: getattr(inductor, key) for key in COMPILE_TUNING if key not in _untuned})
        for key, value in (COMPILE_TUNING if compile_tuning else _untuned).items():
            setattr(inductor, key, value)
        pipe.unet.compile(mode=compile_mode, fullgraph=True)
    return pipe
