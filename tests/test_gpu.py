"""One card per GPU job: the DAG's device decision and the slot-to-CUDA_VISIBLE_DEVICES mapping, on fake cards."""
import subprocess
import sys

import pytest

from ipbench.gpu import claim_gpu, dag_device, gpu_resource, pin_to_free_gpu, visible_gpus


def test_dag_device_never_reaches_cuda_without_a_gpu():
    assert dag_device("auto", []) == "cpu"
    assert dag_device("auto", ["GPU-a"]) == "cuda"
    assert dag_device("cpu", ["GPU-a"]) == "cpu"
    assert dag_device("cuda", []) == "cuda"  # a cluster's submit node sees no GPU; its jobs do


def test_only_network_jobs_on_cuda_reserve_a_gpu():
    assert gpu_resource("cuda", True) == 1
    assert gpu_resource("cuda", False) == 0
    assert gpu_resource("cpu", True) == 0


def test_visible_gpus_follow_the_scheduler_first():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,5"}) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []


def test_concurrent_jobs_get_distinct_cards(tmp_path):
    cards = ["GPU-a", "GPU-b", "GPU-c"]
    held = [claim_gpu(cards, tmp_path) for _ in cards]
    assert sorted(card for card, _ in held) == cards
    with pytest.raises(RuntimeError, match="all 3 GPU slots"):
        claim_gpu(cards, tmp_path)
    card, handle = held[1]
    handle.close()  # that job ended: its card is free again
    assert claim_gpu(cards, tmp_path)[0] == card


def test_several_jobs_per_card_fill_every_card_first(tmp_path):
    cards = ["0", "1"]
    held = [claim_gpu(cards, tmp_path, jobs_per_gpu=2) for _ in range(4)]  # keep the handles: they hold the locks
    assert [card for card, _ in held] == ["0", "1", "0", "1"]


def test_a_lock_is_held_across_processes(tmp_path):
    """Jobs are separate processes: a card another process holds is not handed out again."""
    code = ("import sys, time; from ipbench.gpu import claim_gpu; "
            f"card, h = claim_gpu(['x', 'y'], {str(tmp_path)!r}); print(card, flush=True); time.sleep(30)")
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        taken = other.stdout.readline().strip()
        assert taken == "x"
        assert claim_gpu(["x", "y"], tmp_path)[0] == "y"
    finally:
        other.kill()


def test_pinning_sets_cuda_visible_devices(tmp_path):
    environ = {"CUDA_VISIBLE_DEVICES": "3,7", "IPBENCH_GPU_LOCKS": str(tmp_path), "IPBENCH_JOBS_PER_GPU": "1"}
    first = pin_to_free_gpu(environ)
    assert environ["CUDA_VISIBLE_DEVICES"] == "3"
    environ["CUDA_VISIBLE_DEVICES"] = "3,7"
    second = pin_to_free_gpu(environ)
    assert environ["CUDA_VISIBLE_DEVICES"] == "7"
    first.close(), second.close()
