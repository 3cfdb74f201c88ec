"""Which device a job runs on: one decision for the DAG, one card per GPU job.

``dag_device`` turns the config's ``device`` (auto, cpu, cuda) into what every
job is told, at DAG-build time and without importing torch, so ``auto`` can
never reach CUDA without the job having reserved ``gpu=1``. Inside a job,
``claim_gpu`` takes a free slot (a lock file per card, ``IPBENCH_JOBS_PER_GPU``
slots each) and pins the process to that card with ``CUDA_VISIBLE_DEVICES``
before CUDA starts. With ``--resources gpu=N`` and N slots, the jobs Snakemake
runs at once always find a free slot.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path


def visible_gpus(environ=os.environ) -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set (a scheduler's choice), else nvidia-smi's UUIDs."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"], capture_output=True,
                          text=True, check=False, timeout=30)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def dag_device(requested: str, gpus: list[str]) -> str:
    """cpu or cuda, as every job of the DAG will be told.

    ``auto`` looks at this machine; ``cuda`` is taken as asked, since a cluster's submit node
    may have no GPU while its jobs do (a job without one fails at its start, naming the key).
    """
    if requested == "auto":
        return "cuda" if gpus else "cpu"
    return requested


def gpu_resource(device: str, runs_network: bool) -> int:
    """The ``resources: gpu`` of a job: 1 exactly when it will run a network on CUDA."""
    return int(device == "cuda" and runs_network)


def claim_gpu(gpus: list[str], lock_dir: Path, jobs_per_gpu: int = 1):
    """Lock a free (card, slot) and return (card id, open lock file); the lock lasts as long as the file is open.

    Slots are tried card by card, lowest first, so N jobs on N cards get one card each.
    """
    if not gpus:
        raise RuntimeError("this job reserved a GPU (resources: gpu=1) but no GPU is visible")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(jobs_per_gpu):
        for gpu in gpus:
            handle = open(lock_dir / f"{gpu.replace('/', '_')}.slot{slot}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return gpu, handle
    raise RuntimeError(f"all {len(gpus) * jobs_per_gpu} GPU slots in {lock_dir} are taken: run snakemake with "
                       f"--resources gpu=N, N <= {len(gpus) * jobs_per_gpu} (cards x IPBENCH_JOBS_PER_GPU)")


def pin_to_free_gpu(environ=os.environ):
    """In a job that reserved a GPU: claim a card and set ``CUDA_VISIBLE_DEVICES`` to it. Returns the lock handle."""
    lock_dir = Path(environ.get("IPBENCH_GPU_LOCKS", f"/tmp/ipbench-gpu-locks-{os.getuid()}"))
    gpu, handle = claim_gpu(visible_gpus(environ), lock_dir, int(environ.get("IPBENCH_JOBS_PER_GPU", "1")))
    environ["CUDA_VISIBLE_DEVICES"] = gpu
    return handle
