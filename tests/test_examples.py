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


def _run_example(*arguments, env=None):
    return subprocess.run(
        [*arguments], capture_output=True, text=True, timeout=900, env=env, cwd=ROOT
    )


@pytest.mark.slow
def test_classifier_example(tmp_path):
    out = _run_example(
        sys.executable, ROOT / "examples" / "classifier.py", "--n-samples", "240",
        "--out", tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "held-out log-loss: personalized" in out.stdout
    for name in ("summary.txt", "embedding.png", "covariate_importance.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.slow
def test_diabetes_example(tmp_path):
    out = _run_example(
        sys.executable, ROOT / "examples" / "diabetes.py", "--folds", "2", "--out", tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "least squares, all ten variables" in out.stdout
    assert "bayes_prsn (defaults)" in out.stdout
    assert "which covariates drive the differences" in out.stdout
    assert (tmp_path / "zoom.png").stat().st_size > 1000
    assert (tmp_path / "clusters.png").stat().st_size > 1000


@pytest.mark.slow
def test_cli_example(tmp_path):
    import os

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = _run_example("bash", ROOT / "examples" / "cli.sh", tmp_path, "150", env=env)
    assert out.returncode == 0, out.stderr
    assert "exit status 1" in out.stdout
    assert "prediction,prediction_lower90,prediction_upper90" in out.stdout
    for name in ("model.bprsn", "posterior.nc", "coefficients.csv", "summary.txt"):
        assert (tmp_path / "fit" / name).stat().st_size > 0
    assert (tmp_path / "predictions.csv").exists()


@pytest.mark.slow
def test_tokyo_mortality_example():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tokyo_mortality.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "deviance explained 0." in out.stdout
