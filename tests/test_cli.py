"""The bayes-prsn command line: its exit statuses and what it prints, as a shell user sees them.

Most commands run in this process through :func:`bayes_prsn.cli.main`, the
function the console script calls (``sys.exit(main())``), with stdout and
stderr captured (:func:`run`): the same exit status and output as from a
shell, without a new interpreter, JAX start-up and compilation for every
command. The console script itself, its exit status as a process and one
error message from it run in a subprocess (:func:`run_script`); the README's
command-line block and ``examples/cli.sh`` run whole in a shell
(``tests/test_readme.py``, ``tests/test_examples.py``).
"""

import contextlib
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_prsn

SCRIPT = Path(sys.executable).with_name("bayes-prsn")


def run_script(*arguments, cwd=None):
    """The installed console script in a subprocess."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bayes_prsn"]
    return subprocess.run(
        [*command, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def run(*arguments):
    """``bayes-prsn ARGUMENTS`` in this process: exit status, stdout and stderr.

    Usage errors exit through argparse's ``SystemExit`` (status 2), as in the
    console script.
    """
    from bayes_prsn.cli import main

    arguments = [str(argument) for argument in arguments]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(arguments)
        except SystemExit as stop:
            code = stop.code
    return subprocess.CompletedProcess(arguments, code, out.getvalue(), err.getvalue())


def test_console_script_is_installed():
    assert SCRIPT.exists() or shutil.which("bayes-prsn"), "pip install -e . installs bayes-prsn"
    out = run_script("--version")
    assert out.returncode == 0 and bayes_prsn.__version__ in out.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run("demo", "--out", out, "--n-samples", 200)
    assert result.returncode == 0, result.stderr
    return out, result


def test_demo_writes_every_output(demo):
    out, result = demo
    for name in (
        "data.csv",
        "true_coefficients.csv",
        "coefficients.csv",
        "model.bprsn",
        "summary.txt",
        "coefficients.png",
        "forest.png",
        "clusters.png",
        "embedding.png",
        "covariate_importance.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert "theta-MSE of the per-sample models" in result.stdout
    assert "MAP (SVI)" in result.stderr  # the progress bar
    summary = (out / "summary.txt").read_text()
    assert "which covariates matter" in summary and "clusters of the per-sample models" in summary
    coefficients = pd.read_csv(out / "coefficients.csv", index_col=0)
    assert coefficients.shape == (200, 4)
    assert list(coefficients.columns) == ["x0", "x1", "x2", "intercept"]
    assert coefficients.index[0] == "sample0"
    truth = pd.read_csv(out / "true_coefficients.csv", index_col=0)
    personal = np.mean((coefficients[truth.columns].to_numpy() - truth.to_numpy()) ** 2)
    model = bayes_prsn.load(out)
    population = np.mean((model.population_coef_ - truth.to_numpy()) ** 2)
    assert personal < 0.5 * population


def _predict_with_interval(data, fitted, tmp_path, n_rows: int):
    """``bayes-prsn predict --interval`` of the first rows of ``data`` (without y) by the fit
    in ``fitted``: those rows and the predictions table."""
    frame = pd.read_csv(data, index_col=0).iloc[:n_rows]
    new = tmp_path / "new.csv"
    frame.drop(columns="y").to_csv(new)
    predictions = tmp_path / "predictions.csv"
    result = run("predict", fitted, new, "--out", predictions, "--interval", "--quiet")
    assert result.returncode == 0, result.stderr
    return frame, pd.read_csv(predictions, index_col=0)


def test_fit_with_posterior_then_predict(demo, tmp_path):
    data = demo[0] / "data.csv"
    out = tmp_path / "fit"
    # Predictors inferred: every column but the target and the covariates.
    result = run(
        "fit", data, "--target", "y", "--covariates", "u0,u1,u2,noise0",
        "--posterior", "laplace", "--num-samples", 200, "--max-steps", 1500,
        "--random-state", 0, "--out", out, "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # --quiet silences progress, not the result: the summary is still printed.
    assert "MAP (SVI)" not in result.stderr and "fitting" not in result.stderr
    assert "coefficients: population model vs spread" in result.stdout
    coefficients = pd.read_csv(out / "coefficients.csv", index_col=0)
    assert {"x0", "x0_lower90", "x0_upper90", "intercept_upper90"} <= set(coefficients.columns)
    assert (coefficients["x0_lower90"] <= coefficients["x0_upper90"]).all()
    for name in ("posterior.nc", "ppc.png", "model.bprsn"):
        assert (out / name).stat().st_size > 0
    from bayes_prsn import arviz_compat

    idata = arviz_compat.from_netcdf(out / "posterior.nc")
    assert arviz_compat.group(idata, "posterior")["coef"].shape[-2:] == (200, 3)

    frame, table = _predict_with_interval(data, out, tmp_path, 15)
    assert list(table.index) == list(frame.index)
    assert {
        "prediction",
        "prediction_lower90",
        "prediction_upper90",
        "coef_x0",
        "intercept",
    } <= set(table.columns)  # the interval columns are named as in coefficients.csv
    model = bayes_prsn.load(out / "model.bprsn")
    expected = model.predict(frame[["x0", "x1", "x2"]], frame[["u0", "u1", "u2", "noise0"]])
    np.testing.assert_allclose(table["prediction"], expected, rtol=1e-12)


def test_fit_with_a_pooled_posterior_then_predict(demo, tmp_path):
    """--refits pools the posterior of refits; the saved model predicts with every fit's draws."""
    data = demo[0] / "data.csv"
    out = tmp_path / "fit"
    result = run(
        "fit", data, "--target", "y", "--covariates", "u0,u1,u2,noise0",
        "--posterior", "laplace", "--num-samples", 50, "--refits", 1, "--max-steps", 600,
        "--random-state", 0, "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sampling the posterior (laplace, pooled with 1 other fits)" in result.stderr
    assert "pooled over 2 fits of the same data" in (out / "summary.txt").read_text()
    from bayes_prsn import arviz_compat

    idata = arviz_compat.from_netcdf(out / "posterior.nc")
    assert arviz_compat.group(idata, "posterior")["coef"].shape[:2] == (2, 50)
    _, table = _predict_with_interval(data, out, tmp_path, 5)
    assert (table["prediction_lower90"] < table["prediction_upper90"]).all()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing file", "no such file"),
        ("empty file", "is empty"),
        ("missing column", r"has no column\(s\) \['tissue'\] \(from --covariates\)"),
        ("non-numeric predictor", r"predictor column\(s\) \['x1'\] are not numeric"),
        ("no rows", "has a header but no rows"),
        ("bad model", "cannot load a bayes_prsn model"),
        ("refits without posterior", r"--refits pools posteriors: add --posterior"),
    ],
)
def test_errors_a_shell_user_understands(tmp_path, case, message):
    good = pd.DataFrame({"y": [1.0, 2.0], "x0": [0.1, 0.2], "x1": [1.0, 2.0], "age": [3, 4]})
    path = tmp_path / "data.csv"
    covariates = "age"
    if case == "missing file":
        path = tmp_path / "nothing.csv"
    elif case == "empty file":
        path.write_text("")
    elif case == "no rows":
        path.write_text("y,x0,x1,age\n")
    elif case == "missing column":
        good.to_csv(path, index=False)
        covariates = "age,tissue"
    elif case == "non-numeric predictor":
        good.assign(x1=["a", "b"]).to_csv(path, index=False)
    if case == "bad model":
        (tmp_path / "fit").mkdir()
        (tmp_path / "fit" / "model.bprsn").write_bytes(b"not a model")
        good.to_csv(path, index=False)
        # From the console script: a whole process prints this one line and nothing else.
        result = run_script("predict", tmp_path / "fit", path, "--out", tmp_path / "p.csv")
    elif case == "refits without posterior":
        good.to_csv(path, index=False)
        result = run("fit", path, "--target", "y", "--refits", 2, "--out", tmp_path)
    else:
        result = run("fit", path, "--target", "y", "--covariates", covariates, "--out", tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayes-prsn: error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]


def test_usage_errors_exit_2(tmp_path):
    for runner in (run, run_script):
        result = runner("fit", "--target", "y")
        assert result.returncode == 2 and "required" in result.stderr
    # --refits takes auto (the default) or a whole number >= 0.
    result = run("fit", tmp_path / "data.csv", "--target", "y", "--refits", "-1")
    assert result.returncode == 2 and "--refits: must be an integer >= 0" in result.stderr
    # --n-fits takes auto (the default) or a whole number >= 1.
    result = run("fit", tmp_path / "data.csv", "--target", "y", "--n-fits", "0")
    assert result.returncode == 2 and "--n-fits: must be an integer >= 1" in result.stderr


def test_refits_default_to_auto():
    from bayes_prsn.cli import build_parser

    fit = ["fit", "data.csv", "--target", "y", "--out", "fit"]
    assert build_parser().parse_args(fit).refits == "auto"
    assert build_parser().parse_args([*fit, "--refits", "2"]).refits == 2
    assert build_parser().parse_args(fit).n_fits == "auto"
    assert build_parser().parse_args([*fit, "--n-fits", "1"]).n_fits == 1
