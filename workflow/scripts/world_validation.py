"""The mini world's validation table: analyzers, mini-CLIPs and the real-vs-real noise floor."""
import pandas as pd
import torch

from ipbench.io import atomic_write_text
from ipbench.jobs import check_device, start_job
from ipbench.world.analyze import CORRUPTIONS, validate
from ipbench.world.clip_train import evaluate_clip
from ipbench.world.mini_sd import evaluate_vae
from ipbench.world.shape_cnn import evaluate_shape_cnn
from metrics.fid import fid_from_features, kid_from_features, load_features

log = start_job(snakemake)
torch.set_num_threads(snakemake.threads)
device = check_device(snakemake.params.device)
n, seed = snakemake.params.n, snakemake.params.seed
dirs = snakemake.params.model_dirs
rows = []


def add(section, model, measure, condition, value, target=None, count=n):
    rows.append({"section": section, "model": model, "measure": measure, "condition": condition,
                 "value": float(value), "target": target, "n": count})


for corruption in CORRUPTIONS:
    for attribute, accuracy in validate(n, seed, corruption).items():
        add("analyzer", "geometric analyzer", f"{attribute} accuracy", corruption, accuracy, 0.99)
cnn = evaluate_shape_cnn(dirs["shape_cnn"], n=n, seed=seed, device=device)
for corruption in CORRUPTIONS:
    for attribute in ("shape", "texture"):
        add("analyzer", "shape/texture CNN", f"{attribute} accuracy", corruption, cnn[f"{attribute}_{corruption}"],
            0.99)
for name in ("judge_clip", "cond_clip"):
    quality = evaluate_clip(dirs[name], device=device, n=n, seed=seed)
    for key, value in quality.items():
        if key.startswith("zero_shot_"):
            attribute = key.removeprefix("zero_shot_")
            add("clip", name, f"zero-shot {attribute} accuracy", "test renders", value,
                0.95 if attribute in ("colour", "shape", "background") else None)
        elif key.startswith("clip_i_auc"):
            add("clip", name, key.replace("clip_i_auc", "CLIP-I same-subject ROC AUC").replace("_", " "),
                "held-out subjects", value, 0.95 if key == "clip_i_auc" else None, f"{quality['n_subjects']} subjects")
vae = evaluate_vae(dirs["vae"], dirs["shape_cnn"], device=device, n=n, seed=seed)
for key, value in vae.items():
    if key.startswith("recon_acc_"):
        add("mini SD", "VAE", f"{key.removeprefix('recon_acc_')} accuracy on reconstructions", "test renders",
            value, 0.98)
add("mini SD", "VAE", "all attributes correct on reconstructions", "test renders", vae["recon_all_correct"],
    None)
add("mini SD", "VAE", "LPIPS(alex) reconstruction vs render (lower is better)", "test renders", vae["lpips_alex"])
add("mini SD", "VAE", "PSNR dB", "test renders", vae["psnr"])
if "real_a" in snakemake.input.keys():
    a, b = load_features(snakemake.input.real_a), load_features(snakemake.input.real_b)
    count = f"{len(a['ids'])} vs {len(b['ids'])}"
    kid_options = snakemake.params.options.get("kid", {})
    add("noise floor", a["info"]["backbone"], "FID real vs real", "two independent test samples",
        fid_from_features(a["features"], b["features"]), None, count)
    add("noise floor", a["info"]["backbone"], "KID×10³ real vs real", "two independent test samples",
        1000 * kid_from_features(a["features"], b["features"], num_subsets=kid_options.get("subsets", 100),
                                 max_subset_size=kid_options.get("subset_size", 1000)), None, count)

table = pd.DataFrame(rows)
table["meets_target"] = [("" if pd.isna(t) else ("yes" if v >= t else "NO")) for v, t in zip(table.value, table.target)]
atomic_write_text(snakemake.output.csv, table.to_csv(index=False))
shown = table.assign(value=table.value.map(lambda v: f"{v:.4f}"), target=table.target.map(
    lambda t: "" if pd.isna(t) else f"≥ {t:g}"))
atomic_write_text(snakemake.output.md, "# Mini-world validation\n\n" + shown.to_markdown(index=False) + "\n\n"
                  f"Analyzer and CLIP rows: {n} fresh test-split renders (seed {seed}); blur = Gaussian σ 0.7 px, "
                  "noise = Gaussian σ 8/255. VAE rows: the same renders encoded (posterior mode) and decoded, read back "
                  "by the analyzers. The real-vs-real row is the FID/KID floor at this sample size. The text-to-image "
                  "numbers of the mini SD are in text2image.md.\n")
log.info("\n%s", table.to_string())
