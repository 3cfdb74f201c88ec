"""The code digest follows imports through the project's packages, and only them."""
from __future__ import annotations

from ipbench.code_digest import code_digest, reachable


def _tree(root):
    files = {
        "workflow/scripts/job.py": "import numpy\nfrom ipbench.a import run\nrun()\n",
        "ipbench/__init__.py": "",
        "ipbench/a.py": "def run():\n    from metrics import b  # inside a function\n    return b\n",
        "ipbench/unrelated.py": "X = 1\n",
        "ipbench/sub/__init__.py": "",
        "ipbench/sub/d.py": "from . import e\nfrom ..a import run\n",
        "ipbench/sub/e.py": "",
        "metrics/__init__.py": "",
        "metrics/b.py": "TRAIN = 'methods.c:train'  # a registry names it\n",
        "methods/__init__.py": "",
        "methods/c.py": "def train():\n    pass\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _names(root, files):
    return sorted(str(path.relative_to(root.resolve())) for path in files)


def test_reachable_follows_function_imports_registry_strings_and_packages(tmp_path):
    root = _tree(tmp_path)
    found = _names(root, reachable(root, (root / "workflow/scripts/job.py",)))
    assert found == ["ipbench/__init__.py", "ipbench/a.py", "methods/__init__.py", "methods/c.py",
                     "metrics/__init__.py", "metrics/b.py", "workflow/scripts/job.py"]


def test_relative_imports_resolve_within_the_package(tmp_path):
    root = _tree(tmp_path)
    found = _names(root, reachable(root, (root / "ipbench/sub/d.py",)))
    assert "ipbench/sub/e.py" in found and "ipbench/a.py" in found and "ipbench/sub/__init__.py" in found


def test_digest_changes_with_reachable_code_only(tmp_path):
    root = _tree(tmp_path)
    before = code_digest(root, ("workflow/scripts/job.py",))
    (root / "ipbench/unrelated.py").write_text("X = 2\n")
    code_digest.cache_clear()
    assert code_digest(root, ("workflow/scripts/job.py",)) == before
    (root / "methods/c.py").write_text("def train():\n    return 1\n")
    from ipbench import code_digest as module

    module._file_sha256.cache_clear()
    code_digest.cache_clear()
    assert code_digest(root, ("workflow/scripts/job.py",)) != before
    # a module named explicitly (a method's own file, which the registry imports by listing files)
    assert code_digest(root, ("workflow/scripts/job.py", "ipbench.unrelated")) != code_digest(
        root, ("workflow/scripts/job.py",))
