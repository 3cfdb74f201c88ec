"""The mini world's trainable models, registered as artifacts (``world:<name>`` in a config).

Defaults are the settings the shipped checkpoints were trained with on one GPU;
a suite's ``training.<name>`` overrides them (the smoke suite trains tiny ones on
CPU in tests). Importing this module imports no torch.
"""
from ipbench.training.registry import Artifact, register_artifact

TRAIN_SET = {"train_set": "data:train_set"}

register_artifact(Artifact(
    "shape_cnn", "ipbench.world.train_jobs:shape_cnn", kind="world", inputs=TRAIN_SET,
    defaults={"steps": 2000, "batch_size": 512, "lr": 0.002, "seed": 0},
    description="shape/texture CNN the analyzers read shape and texture with"))

# train_clip's recipe options (hard negatives, augmentation strengths) default to its RECIPES per preset.
CLIP_DEFAULTS = {"steps": 4000, "batch_size": 1024, "lr": 0.001, "seed": 0, "time_limit_s": None,
                 "hard_negatives": None, "hard_negative_position_weight": None, "position_head_weight": None,
                 "head_warmup_steps": None, "brightness": None, "contrast": None, "hue_degrees": None, "translate": None,
                 "vae_probability": 0.25, "val_every": 500, "evaluation": {"n": 1000, "n_subjects": 50}}

register_artifact(Artifact(
    "cond_clip", "ipbench.world.train_jobs:cond_clip", kind="world", inputs=TRAIN_SET,
    defaults={**CLIP_DEFAULTS, "seed": 2},
    description="conditioning CLIP: its text tower conditions the mini SD, its image tower feeds image-prompt methods"))

register_artifact(Artifact(
    "judge_clip", "ipbench.world.train_jobs:judge_clip", kind="world",
    inputs={**TRAIN_SET, "vae": "world:vae"},  # the VAE's reconstructions are one of its augmentations
    defaults={**CLIP_DEFAULTS, "steps": 6000, "seed": 1},
    description="judge CLIP, used only by metrics (CLIP-I, CLIP-T); another seed and architecture"))

register_artifact(Artifact(
    "vae", "ipbench.world.train_jobs:vae", kind="world",
    inputs={**TRAIN_SET, "shape_cnn": "world:shape_cnn", "lpips_weights": "weights:lpips_alex"},
    defaults={"steps": 6000, "batch_size": 256, "lr": 0.0004, "seed": 3, "lpips_weight": 1.0, "kl_weight": 1.0e-6,
              "time_limit_s": None, "architecture": {"block_out_channels": [64, 128, 128], "latent_channels": 8},
              "evaluation": {"n": 500}},
    description="the mini SD's AutoencoderKL (64x64x3 <-> 16x16 latents)"))

register_artifact(Artifact(
    "unet", "ipbench.world.train_jobs:unet", kind="world",
    inputs={**TRAIN_SET, "vae": "world:vae", "cond_clip": "world:cond_clip", "shape_cnn": "world:shape_cnn"},
    defaults={"steps": 2500, "batch_size": 1024, "lr": 0.0005, "seed": 4, "caption_dropout": 0.1,
              "min_snr_gamma": 5.0, "ema_decay": 0.999, "time_limit_s": None,
              "architecture": {"block_out_channels": [32, 64, 128], "layers_per_block": 2},
              "evaluation": {"n": 256, "guidance_scales": [1.0, 3.0, 5.0, 7.5], "num_inference_steps": 20}},
    description="the mini SD's text-conditioned UNet2DConditionModel"))

register_artifact(Artifact(
    "dino", "ipbench.world.train_jobs:dino", kind="world", inputs=TRAIN_SET,
    defaults={"steps": 4000, "batch_size": 512, "lr": 0.001, "seed": 5, "time_limit_s": None,
              "evaluation": {"n_subjects": 50}},
    description="mini DINO, self-distilled on renders without captions; the subject task's DINO column"))
