"""The type checker over the package (pyright, basic mode, configured in
pyproject.toml): a wrong annotation or a None not handled fails the suite."""

from __future__ import annotations

import shutil
import subprocess

from conftest import ROOT, need


def test_pyright_finds_no_errors():
    need(shutil.which("pyright") is not None, "pyright is not installed (pip install -e '.[dev]')")
    run = subprocess.run(["pyright"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    errors = [ln for ln in run.stdout.splitlines() if " - error" in ln]
    assert run.returncode == 0 and not errors, "\n".join(errors[:30]) or run.stdout[-2000:]
