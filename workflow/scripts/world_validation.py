"""The mini world's validation table: analyzers, both CLIPs, the mini DINO, the VAE, and the FID noise floor."""
import pandas as pd
import torch

from ipbench.io import atomic_write_text
from ipbench.jobs import check_device, start_job
from ipbench.world.analyze import CORRUPTIONS, validate
from ipbench.world.clip_train import evaluate_clip, text_state_displacement
from ipbench.world.mini_sd import evaluate_vae
from ipbench.world.robustness import ATTRIBUTE_CHANGING, make_sample, robustness_report
from ipbench.world.shape_cnn import evaluate_shape_cnn
from metrics.fid import fid_from_features, kid_from_features, load_features

log = start_job(snakemake)
torch.set_num_threads(snakemake.threads)
device = check_device(snakemake.params.device)
n, seed, n_subjects = snakemake.params.n, snakemake.params.seed, snakemake.params.n_subjects
dirs = snakemake.params.model_dirs
rows = []


def add(section, model, measure, condition, value, target=None, count=n, ci95=(None, None)):
    rows.append({"section": section, "model": model, "measure": measure, "condition": condition,
                 "value": float(value), "ci95_low": ci95[0], "ci95_high": ci95[1], "target": target, "n": count})


for corruption in CORRUPTIONS:
    for attribute, accuracy in validate(n, seed, corruption).items():
        add("analyzer", "geometric analyzer", f"{attribute} accuracy", corruption, accuracy, 0.99)
cnn = evaluate_shape_cnn(dirs["shape_cnn"], n=n, seed=seed, device=device)
for corruption in CORRUPTIONS:
    for attribute in ("shape", "texture"):
        add("analyzer", "shape/texture CNN", f"{attribute} accuracy", corruption, cnn[f"{attribute}_{corruption}"],
            0.99)

for name in ("judge_clip", "cond_clip"):
    quality = evaluate_clip(dirs[name], device=device, n=n, n_subjects=n_subjects, seed=seed)
    for key, value in quality.items():
        if key.startswith("zero_shot_"):
            attribute = key.removeprefix("zero_shot_")
            add("clip", name, f"zero-shot {attribute} accuracy", "test renders", value,
                0.95 if attribute in ("colour", "shape", "background") else None)
displacement = text_state_displacement(dirs["cond_clip"], n=min(n, 200), seed=seed, device=device)
for attribute in ("colour", "shape", "texture", "size", "background", "position"):
    add("clip", "cond_clip", f"text-state L2 when the {attribute} word changes", "full test captions",
        displacement[attribute], None, displacement["n"])
add("clip", "cond_clip", "text-state L2, 'top left' vs 'bottom right'", "full test captions",
    displacement["position_top_left_bottom_right"], None, displacement["n"])
add("clip", "cond_clip", "position / colour text-state L2", "full test captions", displacement["position_over_colour"],
    0.5, displacement["n"])

# Judges: do they score content, not render statistics? (ipbench.world.robustness). One sample of renders and
# perturbed copies serves both judges and the VAE rows (its "vae" copies are the reconstructions).
log.info("analyzer and CLIP rows done")
sample = make_sample(n, seed, dirs["vae"], device)
log.info("robustness sample: %d renders, %d perturbations", n, len(sample.images) - 1)
judges = {"judge_clip": f"hf-clip:{dirs['judge_clip']}"}
if "dino" in dirs:
    judges["dino"] = f"hf-dino:{dirs['dino']}"
for name, spec in judges.items():
    report = robustness_report(spec, n=n, seed=seed, n_subjects=n_subjects, device=device, sample=sample)
    log.info("%s robustness done", name)
    measure = "CLIP-I" if name == "judge_clip" else "DINO"
    for condition, result in report["image"].items():
        add("judge", name, f"{measure}(render, perturbed render)", condition, result["mean"],
            None if condition in ATTRIBUTE_CHANGING else 0.95, result["n"], result["ci95"])
    subjects = report["subjects"]
    count = f"{subjects['n_subjects']} subjects"
    add("judge", name, f"{measure} same-subject ROC AUC", "vs different subjects", subjects["auc"], None, count)
    add("judge", name, f"{measure} same-subject ROC AUC", "vs different subjects of the same colour",
        subjects["auc_same_colour"], 0.99, count)
    if "caption" in report:
        clean = report["caption"].pop("clean")
        add("judge", name, "CLIP-T(render, true caption)", "clean", clean["mean"], None, clean["n"], clean["ci95"])
        for condition, result in report["caption"].items():
            add("judge", name, "CLIP-T under perturbation / clean CLIP-T", condition, result["ratio"], 0.90,
                result["n"], result["ratio_ci95"])
        aucs = report["attribute_auc"]
        for condition in (c for c in aucs if c != "n"):
            for attribute, auc in aucs[condition].items():
                add("judge", name, f"true vs wrong-{attribute} caption ROC AUC", condition, auc,
                    0.95 if attribute in ("colour", "shape", "background") else None, aucs["n"])

vae = evaluate_vae(dirs["vae"], dirs["shape_cnn"], device=device, n=n, seed=seed, reconstructions=sample.images["vae"])
for key, value in vae.items():
    if key.startswith("recon_acc_"):
        add("mini SD", "VAE", f"{key.removeprefix('recon_acc_')} accuracy on reconstructions", "test renders",
            value, 0.98)
add("mini SD", "VAE", "all attributes correct on reconstructions", "test renders", vae["recon_all_correct"])
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


def _ci(low, high):
    return "" if pd.isna(low) else f"[{low:.4f}, {high:.4f}]"


shown = table.assign(value=table.value.map(lambda v: f"{v:.4f}"), ci95=[_ci(lo, hi) for lo, hi in
                                                                        zip(table.ci95_low, table.ci95_high)],
                     target=table.target.map(lambda t: "" if pd.isna(t) else f"≥ {t:g}"))
shown = shown[["section", "model", "measure", "condition", "value", "ci95", "target", "meets_target", "n"]]
atomic_write_text(snakemake.output.md, "# Mini-world validation\n\n" + shown.to_markdown(index=False) + "\n\n"
                  f"Analyzer, CLIP and judge rows: {n} fresh test-split renders (seed {seed}); blur = Gaussian σ 0.7 "
                  "px, noise = Gaussian σ 8/255, brightness ±15% and contrast ±20% of every channel, vae = the mini "
                  "SD's VAE reconstruction; hflip changes the named position, so it has no target and no caption "
                  "rows. Judge rows say whether a metric backbone scores content rather than render statistics "
                  "(ipbench/world/robustness.py); CIs are bootstrap 95% over renders. Text-state rows: L2 between "
                  "the conditioning CLIP's padded last hidden states (what the UNet reads) of a caption and the same "
                  "caption with one word changed. VAE rows: the same renders encoded (posterior mode) and decoded, "
                  "read back by the analyzers. The real-vs-real row is the FID/KID floor at this sample size. The "
                  "text-to-image numbers of the mini SD are in text2image.md.\n")
log.info("\n%s", table.to_string())
