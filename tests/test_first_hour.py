"""A new user's first hour: no silently wrong answers, one set of defaults, readable outputs.

Each test here failed on the code before issue 17 (see its closing note).
"""

import inspect
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from test_cli import run

import bayes_prsn
from bayes_prsn import PersonalizedClassifier, PersonalizedRegression, simulate
from bayes_prsn.cli import build_parser
from bayes_prsn.defaults import DEFAULTS, POSTERIOR_DEFAULTS


@pytest.fixture(scope="module")
def frame_fit():
    """A fit on DataFrames with named predictors, as a user makes it."""
    data = simulate.make_low_rank(n_samples=150, n_features=3, random_state=5)
    X = pd.DataFrame(data.X, columns=["dose", "bmi", "sbp"])
    est = PersonalizedRegression(random_state=0, max_steps=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayes_prsn.ConvergenceWarning)
        est.fit(X, pd.Series(data.y, name="outcome"), covariates=data.covariates)
    return est, X, data


# 1. Predictors are checked by name.
def test_reordered_or_renamed_predictors_raise(frame_fit):
    est, X, data = frame_fit
    U = data.covariates
    reference = est.predict(X, covariates=U)
    with pytest.raises(ValueError, match="must be in the same order as they were in fit"):
        est.predict(X[["bmi", "dose", "sbp"]], covariates=U)
    with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- weight"):
        est.predict(X.rename(columns={"bmi": "weight"}), covariates=U)
    with pytest.raises(ValueError, match="seen at fit time, yet now missing:\n- sbp"):
        est.predict(X[["dose", "bmi"]], covariates=U)
    # The columns in fit's order give the fit's predictions; an array warns but works.
    np.testing.assert_array_equal(est.predict(X[list(est.feature_names_in_)], U), reference)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(est.predict(X.to_numpy(), U), reference)


# 2. One set of defaults, shown by --help.
def test_cli_defaults_are_the_estimators():
    for cls in (PersonalizedRegression, PersonalizedClassifier):
        for name, parameter in inspect.signature(cls).parameters.items():
            assert parameter.default == DEFAULTS[name], (cls.__name__, name)
    posterior = inspect.signature(PersonalizedRegression.sample_posterior).parameters
    for name, value in POSTERIOR_DEFAULTS.items():
        assert posterior[name].default == value, name
    parser = build_parser()
    for argv in (["fit", "data.csv", "--target", "y", "--out", "o"], ["demo"]):
        args = vars(parser.parse_args(argv))
        names = ("family", "rank", "n_neighbors", "gamma", "max_steps", "random_state", "n_fits")
        for name in names:
            assert args[name] == DEFAULTS[name], (argv[0], name)
        assert args["num_warmup"] == POSTERIOR_DEFAULTS["num_warmup"]
        assert args["num_chains"] == POSTERIOR_DEFAULTS["num_chains"]
    help_text = " ".join(run("fit", "--help").stdout.split())  # argparse wraps lines
    for flag in ("--rank", "--n-neighbors", "--gamma", "--max-steps", "--random-state"):
        assert flag in help_text
    assert f"(default: {DEFAULTS['gamma']})" in help_text
    assert f"(default: {DEFAULTS['n_neighbors']})" in help_text


# 5 and 6. ID columns, the index column round trip, early checks that leave nothing behind.
@pytest.fixture(scope="module")
def patients(tmp_path_factory):
    folder = tmp_path_factory.mktemp("patients")
    rng = np.random.default_rng(0)
    n = 120
    age = rng.uniform(20, 80, n)
    age[:6] = np.nan
    site = rng.choice(["Boston", "Lyon", "Osaka", "Lima"], n)
    dose = rng.normal(10, 3, n)
    frame = pd.DataFrame(
        {
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "outcome": 50 - (0.3 + 0.01 * np.nan_to_num(age - 50)) * dose + rng.normal(0, 1, n),
            "dose": dose,
            "bmi": rng.normal(27, 4, n),
            "age": age,
            "site": site,
        }
    )
    frame.to_csv(folder / "train.csv", index=False)
    return folder, frame


def test_id_columns_and_index_round_trip(patients, tmp_path):
    folder, frame = patients
    data = folder / "train.csv"
    # An ID column is not reported as a non-numeric predictor: --index-col is suggested.
    result = run(
        "fit", data, "--target", "outcome", "--covariates", "age,site", "--out", tmp_path / "a"
    )
    assert result.returncode == 1
    assert "'patient_id'" in result.stderr and "--index-col patient_id" in result.stderr
    assert not (tmp_path / "a").exists()
    # A mistyped --index-col lists the columns.
    result = run(
        "fit", data, "--target", "outcome", "--covariates", "age,site",
        "--index-col", "patient", "--out", tmp_path / "b",
    )  # fmt: skip
    assert result.returncode == 1 and "its columns are ['patient_id'" in result.stderr
    assert not (tmp_path / "b").exists()
    fit = tmp_path / "fit"
    result = run(
        "fit", data, "--target", "outcome", "--covariates", "age,site",
        "--index-col", "patient_id", "--max-steps", 300, "--random-state", 0, "--out", fit,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(fit / "coefficients.csv").columns[0] == "patient_id"
    # predict remembers the fit's index column; a new level is named in a warning.
    new = frame.drop(columns="outcome").iloc[:10].copy()
    new.loc[new.index[:3], "site"] = "Madrid"
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "predictions.csv"
    result = run("predict", fit, tmp_path / "new.csv", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "never seen in fit: 'site': ['Madrid'] in 3 row(s)" in result.stderr
    assert result.stderr.count("never seen") == 1
    table = pd.read_csv(out, index_col=0)
    assert table.index.name == "patient_id" and list(table.index) == list(new["patient_id"])
    # The summary says what the smoothing is, the residual sd, the held-out comparison,
    # the missing values, and how to read weight against explained.
    summary = (fit / "summary.txt").read_text()
    assert "residual sd of the per-sample models" in summary
    assert "it is not an estimate of the noise" in summary
    assert "held-out fit" in summary and "one population model" in summary
    assert "missing covariate values" in summary and "age 6 of 120" in summary
    assert "The two can rank" in summary
    assert "target: outcome" in summary


def test_bad_arguments_fail_before_any_work(patients, tmp_path):
    folder, frame = patients
    data = folder / "train.csv"
    base = ["fit", data, "--target", "outcome", "--covariates", "age,site", "--index-col",
            "patient_id"]  # fmt: skip
    for flag, value in (("--num-chains", 0), ("--rank", -1), ("--prob", 1.5), ("--gamma", "x")):
        result = run(*base, flag, value, "--out", tmp_path / "x")
        assert result.returncode == 2, (flag, result.stderr)
        assert f"argument {flag}:" in result.stderr  # the flag, not the Python name
        assert not (tmp_path / "x").exists()
    # An --out that is a file, not a folder, is refused before the fit, and stays as it was.
    (tmp_path / "taken").write_text("keep")
    result = run(*base, "--out", tmp_path / "taken")
    assert result.returncode == 1 and "is a file; give another path" in result.stderr
    assert (tmp_path / "taken").read_text() == "keep"
    # A target with missing values: its count, and no output folder.
    frame.assign(outcome=frame["outcome"].where(frame.index >= 4)).to_csv(
        tmp_path / "nan.csv", index=False
    )
    result = run(*base[:1], tmp_path / "nan.csv", *base[2:], "--out", tmp_path / "y")
    assert result.returncode == 1 and "missing in 4 of 120 rows" in result.stderr
    assert not (tmp_path / "y").exists()


# 7. Outputs: a MAP summary(), covariate weights with names.
def test_map_summary(frame_fit):
    est, X, data = frame_fit
    table = est.summary()
    assert list(table.index[:4]) == ["coef[dose]", "coef[bmi]", "coef[sbp]", "intercept"]
    assert list(table.columns) == ["population", "mean", "sd", "5%", "50%", "95%"]
    np.testing.assert_allclose(table.loc["coef[dose]", "mean"], est.coef_[:, 0].mean())
    np.testing.assert_allclose(table.loc["coef[dose]", "population"], est.population_coef_[0])
    weights = table.loc[[f"covariate_weights[{n}]" for n in est.covariate_names_used_], "mean"]
    np.testing.assert_allclose(weights, est.covariate_weights_)
    one = est.summary(samples=[3])
    assert one.loc["coef[3, bmi]", "map"] == est.coef_[3, 1]
    assert one.loc["intercept[3]", "map"] == est.intercept_[3]
    with pytest.raises(ValueError, match="not sample labels"):
        est.summary(samples=["nobody"])


# 8. Start-up: import bayes_prsn and --help do not start JAX or scikit-learn.
def test_import_and_help_are_light():
    code = (
        "import sys, bayes_prsn, bayes_prsn.cli; bayes_prsn.cli.build_parser().format_help(); "
        "print(sorted(m for m in ('jax', 'numpyro', 'sklearn', 'arviz', 'pandas') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert bayes_prsn.PersonalizedRegression is PersonalizedRegression


def test_progress_bar_closes_at_converged(capsys, monkeypatch):
    from bayes_prsn import svi

    monkeypatch.setattr(svi, "_COMPILE_NOTICE", [])  # as in a fresh process
    data = simulate.make_toy(n_samples=100, random_state=2)
    PersonalizedRegression(progress_bar=True, random_state=0, validation_fraction=0.0).fit(
        data.X, data.y, covariates=data.covariates
    )
    err = capsys.readouterr().err
    assert err.count("compiling (first run only)") >= 1 and "converged" in err and "100%" in err


# 9. The smaller items.
def test_smaller_items(frame_fit, tmp_path):
    est, X, data = frame_fit
    with pytest.raises(TypeError, match="y must be numeric"):
        PersonalizedRegression().fit(X, data.y.astype(str), covariates=data.covariates)
    with pytest.raises(ValueError, match="in 2 of 150 samples"):
        PersonalizedRegression().fit(
            X, np.where(np.arange(150) < 2, np.nan, data.y), covariates=data.covariates
        )
    fitted = PersonalizedRegression(family="Gaussian", max_steps=50, validation_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayes_prsn.ConvergenceWarning)
        fitted.fit(X, data.y, covariates=data.covariates)
    fitted.sample_posterior("LAPLACE", num_samples=20, random_state=0)
    assert fitted.posterior_method_ == "laplace"
    umask = os.umask(0o022)
    try:
        path = est.save(tmp_path / "model.bprsn")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
