"""Small helpers every workflow script uses: logging to the rule's log, the job's card, and a fresh
check of the shipped checkpoints the job loads."""
from __future__ import annotations

import logging
import re
import sys
import traceback
from pathlib import Path

from ipbench.training.manifest import recheck_verified

_GPU_LOCK = None  # held for the job's lifetime
CAUSE = "cause: "  # marks the last line of a failed job's log: what the console shows (failure_summary)


def _log_failure(kind, error, tb) -> None:
    """Uncaught errors: the traceback into the log, then the cause on one marked line."""
    traceback.print_exception(kind, error, tb)
    print(f"{CAUSE}{kind.__name__}: {' '.join(str(error).split())}", file=sys.stderr, flush=True)


def start_job(snakemake) -> logging.Logger:
    """Send logging and stderr to the rule's ``log:`` file; pin a GPU job to a card of its own; check the
    shipped checkpoints among its inputs again (a file changed since ``verify_artifact`` ran fails here)."""
    global _GPU_LOCK
    handle = open(snakemake.log[0], "w", buffering=1, encoding="utf-8")
    sys.stderr = handle
    sys.excepthook = _log_failure
    logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)
    log = logging.getLogger(snakemake.rule)
    if int(getattr(snakemake, "resources", {}).get("gpu", 0) or 0) > 0:
        from ipbench.gpu import pin_to_free_gpu

        _GPU_LOCK = pin_to_free_gpu()
        import os

        log.info("GPU job pinned to CUDA_VISIBLE_DEVICES=%s", os.environ["CUDA_VISIBLE_DEVICES"])
    for path in snakemake.input:
        if Path(path).name == "verified.json":
            recheck_verified(path)
    return log


def check_device(device: str) -> str:
    """The device the DAG decided (ipbench.gpu.dag_device), checked against what torch sees."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key device: 'cuda' but torch sees no GPU in this job")
    return device


def job_cause(log_path: str | Path) -> str:
    """A failed job's cause: its log's last marked line, else (it died before start_job) its last line."""
    try:
        lines = [line.strip() for line in Path(log_path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return f"no log at {log_path}"
    marked = [line[len(CAUSE):] for line in lines if line.startswith(CAUSE)]
    return marked[-1] if marked else (lines[-1] if lines else "the log is empty")


def failure_summary(snakemake_logs) -> str:
    """One line per failed job, rule and cause, read from the job logs named in Snakemake's own log.

    The Snakefile's ``onerror`` prints it beside Snakemake's summary, which names only the log files.
    """
    paths = [snakemake_logs] if isinstance(snakemake_logs, (str, Path)) else list(snakemake_logs)
    text = "".join(Path(path).read_text(errors="replace") for path in paths if Path(path).is_file())
    lines = []
    # "Error in rule R:" then indented lines, one of them "    log: a.log, b.log (check log file(s) ...)"
    for rule, block in re.findall(r"^Error in rule (\S+):\n((?:[ \t]+.*\n?)*)", text, re.M):
        logs = re.search(r"^\s+log: (.*?) \(check log file", block, re.M)
        for log in (logs.group(1).split(", ") if logs else []):
            if not log.endswith(".snakemake.log"):
                lines.append(f"  {rule}: {job_cause(log)}  [{log}]")
    unique = list(dict.fromkeys(lines))
    return "\n".join(["Failed jobs and their causes:", *unique]) if unique else ""
