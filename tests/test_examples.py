"""Examples run in a subprocess with tiny settings."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "quickstart.py"),
            "--n-samples",
            "150",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "theta-MSE, training samples" in out.stdout
    assert (tmp_path / "coefficients.png").stat().st_size > 1000
    assert (tmp_path / "summary.txt").exists()


@pytest.mark.slow
def test_uncertainty_example(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "uncertainty.py"),
            *("--n-samples", "80", "--num-warmup", "60", "--num-samples", "40"),
            *("--num-chains", "2", "--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "max split R-hat over coefficients" in out.stdout
    for name in ("forest.png", "trace.png", "coefficient_vs_covariate.png", "ppc.png"):
        assert (tmp_path / name).stat().st_size > 1000
