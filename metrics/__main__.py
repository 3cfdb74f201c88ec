"""python -m metrics METRIC ...: one metric on image folders, printed as one JSON object.

Every result has metric, value, n, backbone, convention, ci95 (percentile bootstrap over items or
pairs; null with --n-boot 0) and converted (files decoded from a non-RGB mode); FID and KID add warnings
(a set below the metric's sensible n, a folder of mixed image sizes), also printed on stderr. Bad inputs
exit with code 2 and a one-line message naming the file or key.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from metrics.clip_scores import CONVENTIONS
from metrics.images import ImageError, list_images, load_rgb, match_pairs, read_manifest, size_warning
from metrics.registry import registered
from metrics.weights import WeightsError

CLEANFID_CONVENTION = registered()["fid"].convention


def _help(name: str, what: str) -> str:
    """A subcommand's help: the registry's description of the metric, and what this command compares."""
    metric = registered()[name]
    (value,) = metric.values.values()
    return f"{value.label}: {value.description} ({what}; backbone {metric.backbone})"


def _result(metric, value, n, backbone, convention, ci95, converted, **extra) -> dict:
    return {"metric": metric, "value": float(value), "n": int(n), "backbone": backbone,
            "convention": convention, "ci95": None if ci95 is None else [float(ci95[0]), float(ci95[1])],
            "converted": converted, **extra}


def _load_arrays(paths) -> tuple[list, list[str]]:
    arrays, converted = [], []
    for path in paths:
        loaded = load_rgb(path)
        arrays.append(loaded.array)
        if loaded.converted_from:
            converted.append(f"{path} ({loaded.converted_from})")
    return arrays, converted


def _item_groups(folder: Path, paths: list[Path]) -> tuple[list[list[int]], str]:
    """Row indices per item: an ipbench set's manifest groups its samples by item_id; else one image each."""
    manifest = folder / "manifest.jsonl"
    if manifest.is_file():
        rows = read_manifest(manifest)
        if all("item_id" in row for row in rows):
            groups = defaultdict(list)
            for index, row in enumerate(rows):
                groups[row["item_id"]].append(index)
            return list(groups.values()), "item"
    return [[i] for i in range(len(paths))], "image"


def _set_metric(args, name: str, value_fn, resample_fn, convention: str) -> dict:
    """value_fn(features_a, features_b) on the two folders; ci95 from resample_fn over items of DIR_A."""
    import torch

    from metrics import inception
    from metrics.stats import bootstrap_set_ci

    folder_a, folder_b = Path(args.dir_a), Path(args.dir_b)
    paths_a, paths_b = list_images(folder_a), list_images(folder_b)
    for folder, paths in ((folder_a, paths_a), (folder_b, paths_b)):
        if len(paths) < 2:  # a covariance (FID) or an unbiased MMD (KID) needs two images at least
            raise ImageError(f"{folder}: {name.upper()} needs at least 2 images, found {len(paths)}")
    groups, unit = _item_groups(folder_a, paths_a)
    device = args.device or inception.default_device()
    workers = args.workers
    if workers is None:  # on a GPU, decoding + clean-fid resizing on one core is the bottleneck
        workers = min(8, (os.cpu_count() or 1) - 1) if torch.device(device).type == "cuda" else 0
    extract = dict(device=device, batch_size=args.batch_size, num_workers=workers,
                   model=inception.load_inception(device))
    features_a, converted_a = inception.extract_features_with_report(paths_a, **extract)
    features_b, converted_b = inception.extract_features_with_report(paths_b, **extract)
    ci95 = None
    if args.n_boot and len(groups) >= 2:
        ci95 = bootstrap_set_ci(resample_fn, [features_a[g] for g in groups], features_b,
                                n_boot=args.n_boot, seed=args.seed)
    value = value_fn(features_a, features_b)
    converted = converted_a + converted_b
    small = registered()[name].small_n_warning(len(paths_a), len(groups))
    warnings = [w for w in (small and f"{folder_a}: {small}", size_warning(folder_a, paths_a),
                            size_warning(folder_b, paths_b)) if w]
    for warning in warnings:
        print(f"python -m metrics {name}: warning: {warning}", file=sys.stderr)
    return _result(name, value, len(paths_a), inception.INCEPTION, convention, ci95, converted,
                   n_a=len(paths_a), n_b=len(paths_b), warnings=warnings,
                   ci_unit=f"{unit}s of DIR_A (DIR_B fixed)", weights_sha1=inception.INCEPTION_SHA1)


def run_fid(args) -> dict:
    from metrics import fid

    # sqrtm (clean-fid's formula) for the value; the exact SVD trace for the many bootstrap resamples.
    return _set_metric(args, "fid", fid.fid_from_features, fid.fid_from_features_fast, CLEANFID_CONVENTION)


def run_kid(args) -> dict:
    from metrics import fid

    def kid(a, b):
        return fid.kid_from_features(a, b, args.subsets, args.subset_size, args.seed)

    convention = (f"{CLEANFID_CONVENTION}; unbiased MMD^2, kernel (x.y/d+1)^3, {args.subsets} subsets "
                  f"of <= {args.subset_size}, seed {args.seed}")
    return _set_metric(args, "kid", kid, kid, convention)


def _mean_result(args, name, per_pair, backbone, convention, converted, **extra) -> dict:
    from metrics.stats import bootstrap_mean_ci

    ci95 = bootstrap_mean_ci(per_pair, n_boot=args.n_boot, seed=args.seed) if args.n_boot else None
    return _result(name, per_pair.mean(), len(per_pair), backbone, convention, ci95, converted, **extra)


def _load_pairs(args):
    pairs = match_pairs(args.dir_a, args.dir_b)
    arrays_a, converted_a = _load_arrays([a for a, _ in pairs])
    arrays_b, converted_b = _load_arrays([b for _, b in pairs])
    return arrays_a, arrays_b, converted_a + converted_b, pairs


def run_lpips(args) -> dict:
    arrays_a, arrays_b, converted, pairs = _load_pairs(args)  # inputs are checked before any network loads
    from metrics.lpips_metric import LPIPS_NAMES, lpips_distances

    distances = lpips_distances(arrays_a, arrays_b, net=args.net, device=args.device,
                                names=[(str(a), str(b)) for a, b in pairs])
    return _mean_result(args, "lpips", distances, LPIPS_NAMES[args.net],
                        "mean over pairs matched by file name", converted)


def read_captions(captions_path: Path, folder: Path, paths: list[Path]) -> list[str]:
    """Caption of each image: JSONL rows {path, caption|prompt} or an ipbench manifest (condition.prompt)."""
    captions = {}
    for row in read_manifest(captions_path):
        text = row.get("caption", row.get("prompt", (row.get("condition") or {}).get("prompt")))
        if not isinstance(text, str):
            raise ValueError(f"{captions_path}: row for {row['path']} has no 'caption', 'prompt' or "
                             "'condition.prompt' text")
        captions[Path(row["path"]).as_posix()] = text
    names = [p.relative_to(folder).as_posix() for p in paths]
    missing = [name for name in names if name not in captions]
    extra = sorted(captions.keys() - set(names))
    if missing or extra:
        raise ValueError(f"{captions_path}: captions do not match the images of {folder}; "
                         f"images without caption: {missing[:3]}, captions without image: {extra[:3]}")
    return [captions[name] for name in names]


def run_clip_t(args) -> dict:
    folder = Path(args.dir)
    paths = list_images(folder)
    texts = read_captions(Path(args.captions), folder, paths)
    arrays, converted = _load_arrays(paths)
    from metrics.backbones import load_backbone
    from metrics.clip_scores import clip_t

    backbone = load_backbone(args.backbone, args.device)
    scores = clip_t(backbone.encode_images(arrays), backbone.encode_texts(texts), args.convention)
    return _mean_result(args, "clip-t", scores, backbone.name, args.convention, converted)


def _embedding_similarity(args, name: str) -> dict:
    arrays_a, arrays_b, converted, _ = _load_pairs(args)
    from metrics.backbones import load_backbone
    from metrics.clip_scores import clip_i

    backbone = load_backbone(args.backbone, args.device)
    scores = clip_i(backbone.encode_images(arrays_a), backbone.encode_images(arrays_b), args.convention)
    return _mean_result(args, name, scores, backbone.name, args.convention, converted)


def run_clip_i(args) -> dict:
    return _embedding_similarity(args, "clip-i")


def run_dino(args) -> dict:
    return _embedding_similarity(args, "dino")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metrics", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="metric", required=True, metavar="METRIC")

    def command(name, run, help_text, n_boot):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        sub.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda if available)")
        sub.add_argument("--n-boot", type=int, default=n_boot,
                         help="bootstrap resamples for ci95; 0 disables")
        sub.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (and of KID subsets)")
        return sub

    def two_folders(sub):
        sub.add_argument("dir_a", metavar="DIR_A")
        sub.add_argument("dir_b", metavar="DIR_B")

    def inception_options(sub):
        two_folders(sub)
        sub.add_argument("--batch-size", type=int, default=64)
        sub.add_argument("--workers", type=int,
                         help="DataLoader workers decoding and resizing (default: 0 on cpu, up to 8 on cuda)")

    sub = command("fid", run_fid, _help("fid", "between two image folders"), 200)
    inception_options(sub)
    sub = command("kid", run_kid, _help("kid", "between two image folders"), 200)
    inception_options(sub)
    sub.add_argument("--subsets", type=int, default=100)
    sub.add_argument("--subset-size", type=int, default=1000)
    sub = command("lpips", run_lpips, _help("lpips", "images paired by relative file name"), 1000)
    two_folders(sub)
    sub.add_argument("--net", choices=["alex", "vgg"], default="alex")
    sub = command("clip-t", run_clip_t, _help("clip_t", "each image with its caption"), 1000)
    sub.add_argument("dir", metavar="DIR")
    sub.add_argument("--captions", required=True,
                     help="JSONL with {path, caption|prompt} rows, or an ipbench manifest.jsonl")
    sub.add_argument("--backbone", required=True, help="backbone spec, see metrics.backbones")
    sub.add_argument("--convention", choices=sorted(CONVENTIONS), default="cosine")
    for name, run, metric in (("clip-i", run_clip_i, "clip_i"), ("dino", run_dino, "dino")):
        sub = command(name, run, _help(metric, "images paired by relative file name"), 1000)
        two_folders(sub)
        sub.add_argument("--backbone", required=True, help="backbone spec, see metrics.backbones")
        sub.add_argument("--convention", choices=sorted(CONVENTIONS), default="cosine")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
        text = json.dumps(result, allow_nan=False)
    except (ImageError, WeightsError, ValueError, OSError) as err:
        print(f"python -m metrics {args.metric}: error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
