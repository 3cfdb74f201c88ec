"""Scale-out (issue 18): one suite through Snakemake with `--resources gpu=1` and with `--resources gpu=N`.

Each run goes into a results root of its own (config key ``results``) under the SAME suite name, since
seeds are derived from suite, task, item and sample. A run is two timed Snakemake calls: the generation
(``--until merge_shards``, with the task data and method preparation before it) and the evaluation (the
tables). Throughput is images over the shards' span, from the first generation job's start to the last
one's end (their ``benchmark:`` files), and over the whole generation call. The default suite is
generation-heavy: 4,000 mini-world captions (``text2image``) for ``sd_text`` on a stand-in
SD1.5-architecture pipeline with RANDOM WEIGHTS (gpu_generation.build_pipeline), 512 px, DDIM 50 steps,
CFG 7.5: the images are noise and the metric values mean nothing; only the timings and the image hashes
are the result. ``--config-file`` runs an existing suite as it is instead (config/config.yaml: the mini
suite). Afterwards every ``manifest.jsonl`` (the sha256 of every image) and every table file is compared
byte for byte against the first run; the script exits non-zero naming the first file that differs. JSON
and a markdown table go to $OUT (default benchmarks/records/) after every call, so a run cut short keeps
what it measured.

    python benchmarks/scale_out.py --gpus 2                       # 1 against 2 GPUs
    python benchmarks/scale_out.py --gpus 4 --compare-unlimited   # and a run with no --resources limit
    python benchmarks/scale_out.py --gpus 2 --config-file config/config.yaml   # the mini suite as it is
    python benchmarks/scale_out.py --dry                          # CPU: tiny stand-in, --cores 1 against 2
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ipbench.gpu import visible_gpus  # noqa: E402
from ipbench.io import atomic_directory, atomic_write_json, atomic_write_text, read_jsonl  # noqa: E402
from ipbench.provenance import config_hash, git_state, package_versions  # noqa: E402

WEIGHTS_NOTE = "RANDOM WEIGHTS (stand-in SD1.5 architecture): timings and image hashes only, noise images"
PINNED = re.compile(r"GPU job pinned to CUDA_VISIBLE_DEVICES=(\S+)")  # ipbench.jobs.start_job's line


def efficiency(rate_1: float, rate_n: float, n: int) -> float:
    """Scaling efficiency: throughput at N / (N x throughput at 1)."""
    if n < 1 or rate_1 <= 0:
        raise ValueError(f"efficiency needs n >= 1 and a positive rate at 1 (got n={n}, rate={rate_1})")
    return rate_n / (n * rate_1)


def compared_files(results: Path) -> list[str]:
    """What the card count must not change, relative to a suite folder: each manifest.jsonl and each table."""
    files = [*(results / "images").rglob("manifest.jsonl"), *(results / "tables").rglob("*")]
    return sorted(str(path.relative_to(results)) for path in files if path.is_file())


def first_difference(reference: Path, other: Path) -> str | None:
    """The first compared file (manifests, then tables) that differs between two suite folders, or None."""
    names = compared_files(reference)
    if not names:
        return f"{reference}: no manifest.jsonl and no table to compare"
    theirs = compared_files(other)
    for name in sorted(set(names) | set(theirs)):
        if name not in theirs:
            return f"{other / name}: missing (it is in {reference})"
        if name not in names:
            return f"{other / name}: not in {reference}"
        ours, its = (reference / name).read_bytes().splitlines(), (other / name).read_bytes().splitlines()
        if ours != its:
            line = next(k for k, (a, b) in enumerate(itertools.zip_longest(ours, its), 1) if a != b)
            return f"{other / name}: differs from {reference / name} (first at line {line})"
    return None


def standin(work: Path, dry: bool, size: int) -> Path:
    """The stand-in pipeline, built once per kind and size (the build is seeded: a reused one is the same)."""
    folder = work / f"standin-{'tiny' if dry else 'sd15'}-{size}px"
    if not (folder / "sd" / "model_index.json").is_file():
        from gpu_generation import build_pipeline

        with atomic_directory(folder) as tmp:  # replaces a folder without a finished pipeline
            build_pipeline(tmp, dry, size, image_encoder=False)
    return folder / "sd"


def suite_config(args, model: Path) -> dict:
    """The generation-heavy suite: the mini world's text2image captions for sd_text on the stand-in."""
    base = yaml.safe_load((REPO / "config" / ("smoke.yaml" if args.dry else "config.yaml")).read_text())
    # The evaluation is light (CLIP-T): this suite measures generation; --config-file config/config.yaml
    # evaluates everything. Not `attributes`: its shape CNN reads 64 px images only (world/shape_cnn.py).
    task = {"samples_per_item": 1, "shards": args.shards, "metrics": ["clip_t"]}
    metrics = {"clip": base["metrics"]["clip"], "bootstrap": base["metrics"]["bootstrap"]}
    return {
        "suite": "scale_out", "device": "cuda", "baseline": "sd_text",
        "data": {**base["data"], "n_items": args.items, "n_real": 0},  # no real set: no FID
        "tasks": {"text2image": task},
        "methods": {"sd_text": {"batch_size": args.batch_size, "params": {
            "pretrained": str(model), "num_inference_steps": args.steps, "guidance_scale": args.cfg}}},
        "checkpoints": base["checkpoints"], "world": base["world"], "metrics": metrics,
    }


def planned_runs(args) -> list[dict]:
    """The runs, the reference first: label, --cores, --resources gpu (None: no limit), extra env, and the N
    of the scale-out run (the one whose throughput the efficiency compares with the reference's)."""
    if args.dry:
        runs = [{"label": "cores1", "cores": "1", "gpu": 1, "env": {}},
                {"label": "cores2", "cores": "2", "gpu": 2, "env": {}, "n": 2}]
    else:
        runs = [{"label": "gpu1", "cores": "all", "gpu": 1, "env": {}}]
        if args.gpus > 1:
            runs.append({"label": f"gpu{args.gpus}", "cores": "all", "gpu": args.gpus, "env": {},
                         "n": args.gpus})
    if args.compare_unlimited:
        # With no limit every GPU job starts at once: as many slots per card as jobs can run, or they fail.
        runs.append({"label": "unlimited", "cores": runs[-1]["cores"], "gpu": None,
                     "env": {"IPBENCH_JOBS_PER_GPU": str(os.cpu_count() or 1)}})
    return runs


def run_flags(run: dict) -> list[str]:
    """What differs between the runs: the cores and the GPU limit."""
    limit = ["--resources", f"gpu={run['gpu']}"] if run["gpu"] is not None else []
    return ["--cores", run["cores"], *limit]


def snakemake_command(args, run: dict, config_file: Path, root: Path, targets: list[str],
                      until: list[str]) -> list[str]:
    command = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(REPO), *run_flags(run), "--scheduler", "greedy"]
    if until:
        command += ["--until", *until]
    return command + ["--configfile", str(config_file), "--config", f"results={root}"] + (
        ["device=cpu"] if args.dry else [])


def cards() -> list[dict]:
    """Index, name and UUID of every card nvidia-smi lists ([] where there is none)."""
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=index,name,uuid", "--format=csv,noheader"],
                          capture_output=True, text=True, check=False, timeout=30)
    rows = [[field.strip() for field in line.split(",")] for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        return []
    return [{"index": int(i), "name": name, "uuid": uuid} for i, name, uuid in rows]


def measure(results: Path) -> dict:
    """Images in the merged manifests; generate_shard job-seconds and their span (first start to last end)
    from the benchmark: files, each written as its job ends; the card each job was pinned to."""
    images = {str(p.parent.relative_to(results / "images")): len(read_jsonl(p))
              for p in sorted((results / "images").glob("*/*/manifest.jsonl"))}
    folder = results / "benchmarks" / "generate_shard"
    timings = [(p.stat().st_mtime, float(pd.read_csv(p, sep="\t")["s"].iloc[0]))
               for p in sorted(folder.rglob("*.tsv"))]
    if not timings:
        raise FileNotFoundError(f"{folder}: no benchmark file of a generation job")
    pinned = [match.group(1) for p in sorted((results / "logs" / "generate_shard").rglob("*.log"))
              for match in [PINNED.search(p.read_text(errors="replace"))] if match]
    span = max(end for end, _ in timings) - min(end - s for end, s in timings)
    return {"images": sum(images.values()), "images_per_set": images, "generate_jobs": len(timings),
            "generate_job_s": sum(s for _, s in timings), "generate_span_s": span,
            "jobs_per_card": {card: pinned.count(card) for card in sorted(set(pinned))}}


def _cell(run: dict, key: str, digits: int) -> str:
    value = run.get(key, run["phases"].get(key))
    return "–" if value is None else f"{value:.{digits}f}"


def table(report: dict) -> str:
    """The report as markdown: one row per run, the efficiency, the comparison."""
    versions = report["versions"]
    lines = [f"Scale-out, {report['date']}, `benchmarks/scale_out.py{' --dry' if report['dry'] else ''}`: "
             f"{report['weights']}.",
             f"Device: {report['device']}; suite `{report['suite']}`, {report['settings']}; commit "
             f"{report['git'].get('commit')}; torch {versions.get('torch')}, diffusers "
             f"{versions.get('diffusers')}, snakemake {versions.get('snakemake')}.", "",
             "| run | snakemake | images | shards' span s | img/s | generation call s | img/s (call) "
             "| generate_shard job-s | jobs per card | evaluation call s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, run in report["runs"].items():
        cards_used = ", ".join(f"{card}: {k}" for card, k in run.get("jobs_per_card", {}).items())
        cells = [label, f"`{run['flags']}`", str(run.get("images", "–")), _cell(run, "generate_span_s", 1),
                 _cell(run, "img_s", 3), _cell(run, "generate", 1), _cell(run, "img_s_call", 3),
                 _cell(run, "generate_job_s", 1),
                 cards_used or ("none pinned" if "images" in run else "–"), _cell(run, "evaluate", 1)]
        failed = f" (failed: {run['failed']})" if "failed" in run else ""
        lines.append("| " + " | ".join(cells) + failed + " |")
    if "efficiency" in report:
        scaling = report["efficiency"]
        dry_note = ". CPU cores of a dry run: a check of the script, not a scale-out measurement"
        lines += ["", f"Scaling efficiency, {' against '.join(reversed(scaling['runs']))}: "
                      f"{scaling['img_s_n']:.3f} / ({scaling['n']} × {scaling['img_s_1']:.3f}) img/s = "
                      f"**{scaling['value']:.3f}** (by the whole generation call: "
                      f"{scaling['call_value']:.3f}){dry_note if report['dry'] else ''}."]
    if "comparison" in report:
        comparison = report["comparison"]
        lines += ["", (f"Identical: {comparison['files']} files (every manifest.jsonl and table) byte for "
                       f"byte in {', '.join(comparison['runs'])} against {comparison['reference']}."
                       if comparison["identical"] else f"**DIFFERENT**: {comparison['first_difference']}")]
    return "\n".join(lines)


def save(report: dict, out: Path) -> None:
    name = "scale_out_dry" if report["dry"] else "scale_out"
    atomic_write_json(out / f"{name}.json", report)
    atomic_write_text(out / f"{name}.md", table(report) + "\n")


# Evaluation jobs reserve GPUs too: in a call of their own they cannot take a card from a generation shard.
PHASES = (("generate", ["merge_shards"]), ("evaluate", []))


def execute(args, run: dict, config: dict, config_file: Path, report: dict) -> None:
    """One run into a fresh results root (timings of real work, not of a no-op rerun), phase by phase."""
    root = args.work / run["label"]
    results = root / config["suite"]
    if root.exists():
        shutil.rmtree(root)
    tables = [f"{task}.{ext}" for task in config["tasks"] for ext in ("csv", "md", "tex")]
    tables += [f"sweep_{sweep}.csv" for sweep in config.get("sweeps", {})]
    targets = [str(results / "tables" / name) for name in tables]
    entry = {"flags": " ".join(run_flags(run)), "env": run["env"], "phases": {}, "snakemake": {}}
    report["runs"][run["label"]] = entry
    for phase, until in PHASES:
        log = args.work / "logs" / f"{run['label']}-{phase}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = snakemake_command(args, run, config_file, root, targets, until)
        entry["snakemake"][phase] = " ".join(command[2:])
        started = time.perf_counter()
        with open(log, "w") as handle:
            done = subprocess.run(command, check=False, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                                  env={**os.environ, **run["env"]})
        entry["phases"][phase] = time.perf_counter() - started
        if done.returncode != 0:
            entry["failed"] = f"{phase}: snakemake exit {done.returncode}, its output in {log}"
            save(report, args.out)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            sys.exit(f"run {run['label']}, {phase}: snakemake failed (exit {done.returncode}); the end of "
                     f"{log}:\n{tail}")
        if phase == "generate":
            entry.update(measure(results))
            entry["img_s_call"] = entry["images"] / entry["phases"]["generate"]
            entry["img_s"] = entry["images"] / entry["generate_span_s"]
        save(report, args.out)
        print(f"{run['label']} {phase}: {entry['phases'][phase]:.1f} s", flush=True)


def scaling(report: dict, runs: list[dict]) -> dict:
    """Efficiency of the N run against the reference: by the shards' span and by the whole generation call."""
    reference, scaled = runs[0], next(run for run in runs if "n" in run)
    one, many, n = report["runs"][reference["label"]], report["runs"][scaled["label"]], scaled["n"]
    return {"n": n, "runs": [reference["label"], scaled["label"]], "img_s_1": one["img_s"],
            "img_s_n": many["img_s"], "value": efficiency(one["img_s"], many["img_s"], n),
            "call_value": efficiency(one["img_s_call"], many["img_s_call"], n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=2, help="N: the second run's --resources gpu=N (cards "
                        "needed); 1 with --compare-unlimited: one card against no limit")
    parser.add_argument("--dry", action="store_true",
                        help="CPU: tiny stand-in, a handful of items, device=cpu, --cores 1 against 2")
    parser.add_argument("--compare-unlimited", action="store_true",
                        help="one more run with no --resources limit")
    parser.add_argument("--config-file", type=Path, help="run this suite as it is instead of the generated "
                        "one (the options below then do not apply)")
    parser.add_argument("--items", type=int, help="captions (default 4,000; --dry 8)")
    parser.add_argument("--size", type=int,
                        help="image side of the stand-in in pixels, a multiple of 64 (default 512; --dry 32)")
    parser.add_argument("--steps", type=int, help="DDIM steps (default 50; --dry 2)")
    parser.add_argument("--cfg", type=float, default=7.5, help="guidance scale")
    parser.add_argument("--batch-size", type=int, help="items per generation batch (default 32; --dry 2)")
    parser.add_argument("--shards", type=int, help="generation jobs (default 8; --dry 2): the same in every "
                        "run, since a manifest row names its shard")
    parser.add_argument("--work", type=Path, default=Path("results/scale-out"),
                        help="the stand-in, the suite config, each run's results root and the Snakemake logs")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "benchmarks/records")))
    args = parser.parse_args()
    defaults = ({"items": 8, "size": 32, "steps": 2, "batch_size": 2, "shards": 2} if args.dry
                else {"items": 4000, "size": 512, "steps": 50, "batch_size": 32, "shards": 8})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.work = args.work.resolve()
    if not args.dry:
        if args.gpus < 1 or (args.gpus == 1 and not args.compare_unlimited):
            parser.error(f"--gpus {args.gpus}: N >= 2, or 1 with --compare-unlimited")
        if len(visible_gpus()) < args.gpus:
            parser.error(f"--gpus {args.gpus}: this machine shows {len(visible_gpus())} GPU(s) "
                         "(nvidia-smi or CUDA_VISIBLE_DEVICES)")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.config_file:
        config_file = args.config_file.resolve()
        config = yaml.safe_load(config_file.read_text())
        settings, weights = f"suite config {args.config_file}", "the suite's own models"
    else:
        config = suite_config(args, standin(args.work, args.dry, args.size))
        config_file = args.work / "suite.yaml"
        atomic_write_text(config_file, yaml.safe_dump(config, sort_keys=False))
        settings = (f"{args.items} text2image captions, sd_text, {args.size} px, DDIM {args.steps} steps, "
                    f"CFG {args.cfg:g}, batch {args.batch_size}, {args.shards} shards")
        weights = WEIGHTS_NOTE
    listed = [] if args.dry else cards()
    report = {"dry": args.dry, "weights": weights, "suite": config["suite"], "settings": settings,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "device": ", ".join(f"{c['index']}: {c['name']}" for c in listed)
              or f"CPU, {os.cpu_count()} cores",
              "cards": listed, "cpus": os.cpu_count(), "host": platform.node(),
              "python": platform.python_version(), "versions": package_versions(), "git": git_state(REPO),
              "config": config, "config_sha256": config_hash(config), "runs": {}}
    runs = planned_runs(args)
    for run in runs:
        execute(args, run, config, config_file, report)
    if any("n" in run for run in runs):
        report["efficiency"] = scaling(report, runs)
    reference = args.work / runs[0]["label"] / config["suite"]
    differences = (first_difference(reference, args.work / run["label"] / config["suite"])
                   for run in runs[1:])
    difference = next((d for d in differences if d), None)
    report["comparison"] = {"reference": runs[0]["label"], "runs": [run["label"] for run in runs[1:]],
                            "files": len(compared_files(reference)), "identical": difference is None,
                            "first_difference": difference}
    save(report, args.out)
    print(table(report), flush=True)
    if difference:
        sys.exit(f"the runs differ: {difference}")


if __name__ == "__main__":
    main()
