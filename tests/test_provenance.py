"""Provenance records: which commit a result or a trained model came from."""

from pathlib import Path

from ipbench.provenance import git_state


def test_git_state_prefers_the_commit_named_in_the_environment(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("IPBENCH_GIT_COMMIT", raising=False)
    assert git_state(tmp_path) == {"commit": None, "dirty": None}  # no repository here
    local = git_state(repo)["commit"]
    assert local is None or len(local) == 40
    # A copied tree on a GPU machine may carry a stale .git: the named commit wins.
    monkeypatch.setenv("IPBENCH_GIT_COMMIT", "0" * 40)
    assert git_state(repo)["commit"] == "0" * 40 and git_state(tmp_path)["commit"] == "0" * 40
