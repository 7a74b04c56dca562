"""The distribution ships models/ as bayes_prsn.models, never as a top-level ``models``."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_installed_package_layout(tmp_path):
    """From outside the source tree: bayes_prsn.models imports, ``models`` does not."""
    code = (
        "import importlib.util, bayes_prsn.models as m; "
        "print(m.personalized_regression.__module__); "
        "print(importlib.util.find_spec('models'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    module, top_level = out.stdout.split()
    assert module == "bayes_prsn.models.personalized"
    assert top_level == "None"


@pytest.mark.slow
def test_built_wheel_ships_models_inside_package(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("bayes_prsn-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bayes_prsn/models/__init__.py" in names
    assert "bayes_prsn/models/personalized.py" in names
    assert not any(name.startswith("models/") for name in names)
    # Import from the unpacked wheel alone (not the source tree).
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import bayes_prsn, bayes_prsn.models, sys; "
        "assert bayes_prsn.__file__.startswith(sys.argv[1]), bayes_prsn.__file__; "
        "assert bayes_prsn.models.__file__.startswith(sys.argv[1]); print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "ok"
