# Trained artifacts, one stage for world models and method weights (ipbench.training).
# A shipped artifact (<checkpoints>/<name>/manifest.json) is verified and used in place;
# one with no shipped copy, or named by `--config retrain=<name>[,<name>...]`, is trained here.
SINGLE_ARTIFACTS = [name for name, a in ARTIFACTS.items() if not a.per_subject] or ["none"]
SUBJECT_ARTIFACTS = [name for name, a in ARTIFACTS.items() if a.per_subject] or ["none"]


rule verify_artifact:
    input:
        f"{CHECKPOINTS}/{{artifact}}/manifest.json",
    output:
        f"{RESULTS}/checkpoints/{{artifact}}/verified.json",
    params:
        code=code_of("verify_artifact.py"),
    wildcard_constraints:
        artifact="|".join(SINGLE_ARTIFACTS),
    log:
        f"{LOGS}/verify_artifact/{{artifact}}.log",
    script:
        "../scripts/verify_artifact.py"


use rule verify_artifact as verify_subject_artifact with:
    input:
        f"{CHECKPOINTS}/{{artifact}}/subjects/{{subject}}/manifest.json",
    output:
        f"{RESULTS}/checkpoints/{{artifact}}/subjects/{{subject}}/verified.json",
    wildcard_constraints:
        artifact="|".join(SUBJECT_ARTIFACTS),
    log:
        f"{LOGS}/verify_artifact/{{artifact}}/{{subject}}.log",


rule train_artifact:
    input:
        train_inputs,
    output:
        f"{RESULTS}/trained/{{artifact}}/manifest.json",
    params:
        code=lambda wc: code_of("train_artifact.py", artifact_module(wc.artifact)),
        settings=lambda wc: artifact_settings(wc.artifact),
        inputs=train_params,
        device=DEVICE,
        config_sha256=config_hash(config),
    threads: 4 if DEVICE == "cuda" else 1
    resources:
        gpu=lambda wc: gpu(ARTIFACTS[wc.artifact].uses_gpu),
    wildcard_constraints:
        artifact="|".join(SINGLE_ARTIFACTS),
    log:
        f"{LOGS}/train_artifact/{{artifact}}.log",
    benchmark:
        f"{BENCH}/train_artifact/{{artifact}}.tsv"
    script:
        "../scripts/train_artifact.py"


use rule train_artifact as train_subject_artifact with:
    output:
        f"{RESULTS}/trained/{{artifact}}/subjects/{{subject}}/manifest.json",
    wildcard_constraints:
        artifact="|".join(SUBJECT_ARTIFACTS),
        subject="|".join(SUBJECTS) or "none",
    log:
        f"{LOGS}/train_artifact/{{artifact}}/{{subject}}.log",
    benchmark:
        f"{BENCH}/train_artifact/{{artifact}}/{{subject}}.tsv"
