"""The benchmark scripts on CPU: their code paths (tiny random models or the shipped stages, few steps)
and gpu_generation's kernel sorting."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.mark.parametrize("name, kind", [
    ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wg_128x64", "attention"),  # not a convolution
    ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nchw", "convolution"),
    ("nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_bias_TNT", "matmul"),
    ("void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::"
     "direct_copy_kernel_cuda(at::TensorIteratorBase&)", "layout copies"),
    ("void at::native::(anonymous namespace)::RowwiseMomentsCUDAKernel<c10::BFloat16>", "normalisation"),
    ("void at::native::vectorized_elementwise_kernel<8, at::native::GeluCUDAKernelImpl", "elementwise"),
    ("Memset (Device)", "other"),
])
def test_profile_sorts_kernels_by_what_they_compute(name, kind):
    from gpu_generation import kernel_kind

    assert kernel_kind(name) == kind


def test_dry_run_measures_every_cpu_part(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/gpu_generation.py", "--dry", "--parts", "ablation", "profile",
                           "equivalence", "features", "compile", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_generation_dry.json").read_text())
    configs = [(row["method"], row["config"]) for row in report["runs"]]
    assert configs == [("sd_text", "harness bfloat16 contiguous"), ("sd_text", "harness bfloat16 channels_last"),
                       ("ip_adapter", "harness bfloat16 contiguous"), ("sd_text", "harness bfloat16 + fuse_qkv")]
    assert all(row["img_s"] > 0 for row in report["runs"])
    assert [p["memory_format"] for p in report["profile"]] == ["contiguous", "channels_last"]
    assert all(abs(sum(p["share"].values()) - 1) < 1e-6 for p in report["profile"])
    assert 0 < report["equivalence"]["bfloat16"] < 0.1 and 0 < report["equivalence"]["float16"] < 0.1
    assert 0 < report["equivalence"]["bfloat16 + fuse_qkv"] < 0.1  # the fastest variant's UNet, checked too
    assert (tmp_path / "unet_profile_contiguous.txt").is_file()
    features = report["features"]
    assert features["features_max_rel_diff"] == 0 and features["fid_rel_diff"] == 0  # GPU-style resize == PIL's
    assert features["decode_ms"] > 0 and features["device_resize"]["img_s"] > 0
    assert features["decode_bound_img_s"] == pytest.approx(features["workers"] * 1e3 / features["decode_ms"])


def test_projection_from_records_takes_the_fastest_row_and_overlaps_pngs(tmp_path):
    from gpu_generation import TABLE1_IMAGES, merged_records, projection

    rates = {"features": {"device_resize": {"img_s": 500.0}}, "clip": {"image_img_s": 100.0, "text_per_s": 1000.0}}
    (tmp_path / "a.json").write_text(json.dumps({"runs": [{"method": "sd_text", "config": "eager", "img_s": 2.0}],
                                                 "png_per_core_s": 1.0, **rates}))
    (tmp_path / "b.json").write_text(json.dumps({"runs": [{"method": "sd_text", "config": "compiled", "img_s": 4.0}],
                                                 "png_per_core_s": 8.0}))
    out = projection(merged_records([tmp_path / "a.json", tmp_path / "b.json"]))["sd_text"]
    assert out["config"] == "compiled" and out["seconds"]["generation"] == TABLE1_IMAGES / 4.0
    assert out["seconds"]["png"] == 0.0  # 8 PNGs/s per thread keep up with 4 images/s
    expected = TABLE1_IMAGES * (1 / 4.0 + 1 / 100.0 + 1 / 1000.0 + 1 / 500.0) / 3600
    assert abs(out["hours"] - expected) < 1e-9
    (tmp_path / "c.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(SystemExit, match="no record has features, clip, png_per_core_s"):
        merged_records([tmp_path / "c.json"])


def test_cascade_probe_reads_the_shipped_stages(tmp_path):
    """The stage probes of docs/if-cascade.md ("What bounds shape") run end to end on a few test scenes."""
    def probe(*args):
        done = subprocess.run([sys.executable, "benchmarks/cascade_probe.py", *args, "--n", "4"],
                              capture_output=True, text=True, cwd=REPO, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    rows = probe("samplers", "--stage", "if_sr", "--run", "ddpm:2:1", "--run", "dpm:2:1:0.5")
    assert [row["run"] for row in rows] == ["ddpm:2:1", "dpm:2:1:0.5"]
    assert all(0 <= row["acc_shape"] <= 1 and 5 < row["psnr"] < 60 for row in rows)
    first, *by_t = probe("x0", "--stage", "if_sr", "--timesteps", "20", "950")
    assert 20 < first["bilinear_psnr"] < 50
    # Nearly clean input gives a better x0 than pure noise: the estimate is read the right way round.
    assert [row["t"] for row in by_t] == [20, 950] and by_t[0]["x0_psnr"] > by_t[1]["x0_psnr"]


def test_cascade_segment_trains_a_changed_segment_and_evaluates_it(tmp_path):
    """A continued stage I segment of one step without min-SNR weighting and at another peak learning rate,
    on a tiny train set, with its report."""
    from ipbench.world.train_data import render_training_set, save_npz

    save_npz(tmp_path / "train_set.npz", render_training_set(16, "train", seed=0))
    done = subprocess.run([sys.executable, "benchmarks/cascade_segment.py", "--stage", "if_base", "--device", "cpu",
                           "--train-set", str(tmp_path / "train_set.npz"), "--out", str(tmp_path / "out"),
                           "--set", "min_snr_gamma=null", "--set", "lr=0.0002",
                           "--steps", "1", "--n-test", "2"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["overrides"] == {"min_snr_gamma": None, "lr": 0.0002}
    assert report["training"]["min_snr_gamma"] is None and report["training"]["lr"] == 0.0002
    assert report["training"]["init_from"]["steps_before"] > 0  # it continued the shipped stage
    assert report["training"]["total_steps"] == report["training"]["init_from"]["steps_before"] + 1
    assert 0 <= report["validation"]["dynamic_cfg_4"]["acc_shape"] <= 1


def test_cascade_segment_names_a_setting_it_does_not_know():
    done = subprocess.run([sys.executable, "benchmarks/cascade_segment.py", "--stage", "if_base", "--out", "unused",
                           "--set", "learning_rate=0.1"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 2 and "'learning_rate=0.1'" in done.stderr and "lr" in done.stderr


def test_png_decode_times_every_decoder_on_pils_pixels():
    done = subprocess.run([sys.executable, "benchmarks/png_decode.py", "--files", "2"], capture_output=True,
                          text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["noise"], row["zlib_level"]) for row in rows] == [(12.0, 6), (12.0, 1), (2.0, 6), (2.0, 1)]
    assert all(row["PIL ms"] > 0 and row["torchvision ms"] > 0 for row in rows)
