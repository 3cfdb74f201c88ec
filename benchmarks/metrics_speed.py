"""Speed of the metric engine, with correctness checks on the same images.

1) writes N synthetic PNGs (64x64, optionally 256x256), 2) times the bare Inception forward on
pre-resized tensors, 3) times extract_features from the PNG files (ratio to bare), 4) times
torchmetrics' FID with the same network and clean-fid resize and checks its FID equals ours (two
halves of the images as the two sets), and that batched features equal a per-image reference path,
5) times LPIPS-alex pairs/s if metrics.lpips_metric is importable.

    python benchmarks/metrics_speed.py --device cpu --n 32 --out benchmarks/out/metrics_speed_cpu.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, like the Snakefile

from metrics import fid, inception  # noqa: E402
from metrics.images import load_rgb  # noqa: E402
from metrics.weights import WeightsError  # noqa: E402

# Ours vs torchmetrics on identical features, as |difference| / (Tr S_a + Tr S_b): the error of the
# sqrt-trace term scales with the covariances, not with the FID, which can be small beside them
# (relative to the FID itself, 2e-6..6e-6 was measured for a FID of 5.7 at n=2048 on an H100 machine).
FID_TOLERANCE = 1e-6
# Batched vs per-image features, as max |difference| / max |feature|: float32 kernels differ with the
# batch shape (cuDNN algorithms, oneDNN blocking); 1e-6..2e-6 measured on an H100, 5e-7 on a 16-core CPU.
FEATURE_TOLERANCE = 1e-5


def write_pngs(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """Smooth colour fields plus noise: PNGs that cost a realistic decode."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), dtype=np.float64)
        pixels = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
        path = folder / f"{size}_{i:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "cpu"


def timed(fn, device: torch.device):
    """(result, seconds) of fn(), synchronising the GPU on both ends."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def relative_difference(ours, reference) -> float:
    ours, reference = np.asarray(ours, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return float(np.abs(ours - reference).max() / max(np.abs(reference).max(), 1e-30))


def bare_forward_rate(model, paths, device, batch_size) -> float:
    """img/s of the network alone on inputs already resized, normalised and on the device.

    The median over as many batches as the pipeline runs (at least 3), so one slow batch on a
    shared CPU does not decide the ratio.
    """
    pixels = torch.stack([inception.preprocess(load_rgb(p).array) for p in paths[:batch_size]]).to(device)
    with inception.exact_fp32(), torch.inference_mode():
        model(pixels)  # warm-up (TorchScript profiling runs, cuDNN algorithm choice)
        model(pixels)
        seconds = [timed(lambda: model(pixels), device)[1] for _ in range(max(3, len(paths) // batch_size))]
    return len(pixels) / float(np.median(seconds))


def per_image_features(model, paths, device) -> np.ndarray:
    """Reference path: no DataLoader, no batching."""
    rows = []
    with inception.exact_fp32(), torch.inference_mode():
        for path in paths:
            pixels = inception.preprocess(load_rgb(path).array)[None].to(device).contiguous()
            rows.append(model(pixels).double().cpu().numpy()[0])
    return np.stack(rows)


class CleanFidInception(torch.nn.Module):
    """The same TorchScript net for torchmetrics: uint8 NCHW -> clean-fid resize -> (x-128)/128 -> pool3."""

    def __init__(self, model, device):
        super().__init__()
        self.net, self.device = model, device
        from cleanfid.resize import make_resizer

        self.resize = make_resizer("PIL", False, "bicubic", (299, 299))

    def forward(self, images):
        resized = np.stack([self.resize(image.permute(1, 2, 0).cpu().numpy()) for image in images])
        scaled = (torch.from_numpy(resized).permute(0, 3, 1, 2).to(self.device) - 128) / 128
        with inception.exact_fp32(), torch.no_grad():
            return self.net(scaled).double()


def torchmetrics_fid(model, paths, device, batch_size) -> float:
    """torchmetrics' FID of the two halves; with n/2 a multiple of batch_size its network sees the
    same batches as extract_features, so the features are identical and only the distance differs."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=CleanFidInception(model, device),
                                      input_img_size=(3, 64, 64)).to(device)
    half = len(paths) // 2
    for real, subset in ((True, paths[:half]), (False, paths[half:])):
        for start in range(0, len(subset), batch_size):
            images = [np.asarray(Image.open(p).convert("RGB")) for p in subset[start:start + batch_size]]
            metric.update(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(device), real=real)
    return float(metric.compute())


def lpips_rate(paths, device, batch_size) -> float | str:
    try:
        from metrics.lpips_metric import lpips_distances

        arrays = [load_rgb(p).array for p in paths]
        half = len(arrays) // 2
        lpips_distances(arrays[:2], arrays[half:half + 2], net="alex", device=device)  # warm-up, weights
    except (ImportError, WeightsError) as err:  # lpips or its weights not installed on this machine
        return f"skipped: {err}"
    pairs = (arrays[:half], arrays[half:2 * half])
    _, seconds = timed(lambda: lpips_distances(*pairs, net="alex", device=device, batch_size=batch_size),
                       device)
    return half / seconds


def pipeline_rate(paths, bare_rate, **extract) -> tuple[np.ndarray, dict]:
    """Features of ``paths`` through extract_features, and its img/s (also relative to the bare forward)."""
    inception.extract_features_with_report(paths[:extract["batch_size"]], **extract)  # warm-up
    (features, _), seconds = timed(lambda: inception.extract_features_with_report(paths, **extract),
                                   extract["device"])
    return features, {"img_s": len(paths) / seconds, "ratio_to_bare": len(paths) / seconds / bare_rate}


def fid_agreement(model, paths, features, device, batch_size) -> dict:
    """Our FID (sqrtm and SVD routes) of the two halves against torchmetrics' on the same images."""
    half = len(paths) // 2
    a, b = features[:half], features[half:]
    ours, sqrtm_s = timed(lambda: fid.fid_from_features(a, b), device)
    fast, svd_s = timed(lambda: fid.fid_from_features_fast(a, b), device)
    reference, reference_s = timed(lambda: torchmetrics_fid(model, paths, device, batch_size), device)
    scale = np.trace(np.cov(a.T)) + np.trace(np.cov(b.T))
    return {
        "ours_sqrtm": ours, "ours_svd": fast, "torchmetrics": reference, "trace_sum": scale,
        "diff_sqrtm_over_traces": abs(ours - reference) / scale,
        "diff_svd_over_traces": abs(fast - reference) / scale,
        "rel_diff_sqrtm": abs(ours - reference) / abs(reference),
        "rel_diff_svd": abs(fast - reference) / abs(reference),
        "sqrtm_s": sqrtm_s, "svd_s": svd_s,
        "torchmetrics_img_s": len(paths) / reference_s,  # decode + resize + forward + distance, both sets
    }


def run(args) -> dict:
    device = torch.device(args.device)
    model = inception.load_inception(device)
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "n": args.n,
        "batch_size": args.batch_size, "workers": args.workers, "fid_tolerance": FID_TOLERANCE,
        "feature_tolerance": FEATURE_TOLERANCE, "pipeline": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        images = {size: write_pngs(Path(tmp), args.n, size) for size in args.sizes}
        first = images[args.sizes[0]]
        bare = report["bare_forward_img_s"] = bare_forward_rate(model, first, device, args.batch_size)
        extract = dict(device=device, batch_size=args.batch_size, num_workers=args.workers, model=model)
        features = {}
        for size, paths in images.items():
            features[size], report["pipeline"][str(size)] = pipeline_rate(paths, bare, **extract)
        first_features = features[args.sizes[0]]
        reference = per_image_features(model, first, device)
        report["features_vs_per_image"] = relative_difference(first_features, reference)
        report["fid"] = fid_agreement(model, first, first_features, device, args.batch_size)
        report["lpips_alex_pairs_s"] = lpips_rate(first, device, args.batch_size)
    report["checks_passed"] = bool(report["features_vs_per_image"] <= FEATURE_TOLERANCE
                                   and report["fid"]["diff_sqrtm_over_traces"] <= FID_TOLERANCE
                                   and report["fid"]["diff_svd_over_traces"] <= FID_TOLERANCE)
    return report


def print_table(report: dict) -> None:
    print(f"device: {report['device']}  torch {report['torch']}  n={report['n']}  "
          f"batch={report['batch_size']}  workers={report['workers']}")
    print(f"{'bare Inception forward':<40}{report['bare_forward_img_s']:>12.1f} img/s")
    for size, row in report["pipeline"].items():
        print(f"{'extract_features from ' + size + 'px PNG':<40}{row['img_s']:>12.1f} img/s"
              f"   ({100 * row['ratio_to_bare']:.0f}% of bare)")
    row = report["fid"]
    print(f"{'torchmetrics FID (same net), end to end':<40}{row['torchmetrics_img_s']:>12.1f} img/s")
    lpips = report["lpips_alex_pairs_s"]
    print(f"{'LPIPS-alex':<40}" + (f"{lpips:>12.1f} pairs/s" if isinstance(lpips, float) else f"  {lpips}"))
    print(f"FID ours: sqrtm {row['ours_sqrtm']:.6f} ({row['sqrtm_s']:.2f} s), SVD {row['ours_svd']:.6f} "
          f"({row['svd_s']:.3f} s); torchmetrics {row['torchmetrics']:.6f}; "
          f"diff / FID {row['rel_diff_sqrtm']:.1e} / {row['rel_diff_svd']:.1e}, diff / (Tr S_a + Tr S_b) "
          f"{row['diff_sqrtm_over_traces']:.1e} / {row['diff_svd_over_traces']:.1e} "
          f"(tolerance {report['fid_tolerance']:.0e})")
    print(f"batched vs per-image features: max diff / max |feature| {report['features_vs_per_image']:.1e} "
          f"(tolerance {report['feature_tolerance']:.0e}); "
          f"checks {'passed' if report['checks_passed'] else 'FAILED'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=32, help="images per size (even; halves are the FID sets)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64], help="PNG sides, e.g. 64 256")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.n < 4 or args.n % 2:
        parser.error("--n must be an even number >= 4")
    if (args.n // 2) % args.batch_size:
        print("note: n/2 is not a multiple of --batch-size, so torchmetrics sees other batches than "
              "extract_features and the FID check also measures float32 batch-shape noise", file=sys.stderr)
    report = run(args)
    print_table(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["checks_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
