"""Reliability: non-finite losses, interruptions, the memory guard, reproducibility, extremes."""

import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

import bayes_prsn
import bayes_prsn.sampling
from bayes_prsn import (
    ConvergenceWarning,
    NumericalWarning,
    PersonalizedClassifier,
    PersonalizedRegression,
    simulate,
)


@pytest.fixture(scope="module")
def counts():
    return simulate.make_poisson(n_samples=200, random_state=0)


def test_non_finite_loss_restarts_with_smaller_steps(counts):
    """A step size of 20 sends the Poisson rate's loss to 1e15 in the first 100 steps.

    The chunk is run again with a step size 4 times smaller (5), and again
    (1.25) if that goes wrong too; the fit ends finite.
    """
    est = PersonalizedRegression(
        family="poisson", step_size=20.0, validation_fraction=0.0, random_state=0
    )
    with pytest.warns(NumericalWarning) as record, warnings.catch_warnings():
        # The restarted run may end at the step cap, short of the stopping rule.
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(counts.X, counts.y, covariates=counts.covariates)
    messages = [str(warning.message) for warning in record]
    reason = r"(the loss was not finite at step \d+|the optimiser diverged\))"
    assert all(re.search(reason + r"; restarting from the state of step \d+", m) for m in messages)
    assert any(m.endswith("step_size 5.") for m in messages), messages
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.loss_history_))


def test_a_diverging_optimiser_restarts_with_smaller_steps(counts):
    """A finite blow-up is caught too, not only a non-finite loss.

    With step size 1 the first 100 steps take the loss from 14,239 to 5e7,
    all finite. Without the check (``svi.DIVERGENCE`` infinite) the fit
    ended at a loss of 3.7e7 with theta-MSE 15,226 (against 0.057 at the
    default step size) and only the step cap's warning. With it the chunk is
    run again with step size 0.25.
    """
    kwargs = dict(family="poisson", validation_fraction=0.0, random_state=0)
    est = PersonalizedRegression(step_size=1.0, **kwargs)
    restart = r"optimiser diverged\); restarting .* step_size 0\.25"
    with pytest.warns(NumericalWarning, match=restart):
        est.fit(counts.X, counts.y, covariates=counts.covariates)
    default = PersonalizedRegression(**kwargs).fit(counts.X, counts.y, covariates=counts.covariates)
    error = np.mean((est.coef_ - counts.coef) ** 2)
    assert error <= 1.5 * np.mean((default.coef_ - counts.coef) ** 2)
    assert est.loss_history_[-1] < est.loss_history_[0]


def test_non_finite_loss_stops_with_a_clear_error(counts):
    est = PersonalizedRegression(
        family="poisson", step_size=1e7, validation_fraction=0.0, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        with pytest.raises(FloatingPointError, match=r"not finite at step \d+, after 3 restart"):
            est.fit(counts.X, counts.y, covariates=counts.covariates)
    assert not hasattr(est, "coef_")  # never NaN coefficients as a success


def test_same_seed_same_results_different_seed_different_draws(framed):
    data, X, covariates = framed

    def fit(seed):
        return PersonalizedRegression(random_state=seed).fit(X, data.y, covariates=covariates)

    first, second = fit(0), fit(0)
    np.testing.assert_array_equal(first.coef_, second.coef_)
    np.testing.assert_array_equal(first.loss_history_, second.loss_history_)
    settings = dict(num_warmup=20, num_samples=10, num_chains=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = first.sample_posterior(random_state=3, **settings)
        b = second.sample_posterior(random_state=3, **settings)
        c = second.sample_posterior(random_state=4, **settings)
    draws = [bayes_prsn.arviz_compat.group(d, "posterior")["coef"].values for d in (a, b, c)]
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])
    laplace = [first.sample_posterior("laplace", num_samples=50, random_state=s) for s in (5, 5)]
    np.testing.assert_array_equal(
        *[bayes_prsn.arviz_compat.group(d, "posterior")["coef"].values for d in laplace]
    )


INTERRUPTED_FIT = textwrap.dedent(
    """
    import signal, sys, time
    # A shell that starts jobs in the background makes them ignore SIGINT; restore
    # Python's own handler so that the signal acts as Ctrl-C in a terminal would.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from bayes_prsn import PersonalizedRegression, simulate
    n_samples, validation_fraction = int(sys.argv[1]), float(sys.argv[2])
    data = simulate.make_toy(n_samples=n_samples, random_state=0)
    est = PersonalizedRegression(max_steps=10**7, tol=1e-12, n_jobs=2, progress_bar=True,
                                 validation_fraction=validation_fraction, random_state=0)
    try:
        est.fit(data.X, data.y, covariates=data.covariates)
    except KeyboardInterrupt:
        print("interrupted; fitted:", hasattr(est, "coef_"), flush=True)
    """
)


@pytest.mark.parametrize(
    ("n_samples", "validation_fraction", "stage"),
    [
        (2000, 0.0, "MAP (SVI)"),  # the final fit
        # The smoothing choice: 5 folds, two validation fits at a time on threads.
        (600, 0.2, "choosing smoothing"),
    ],
)
def test_ctrl_c_during_fit_leaves_it_unfitted(n_samples, validation_fraction, stage):
    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_FIT, str(n_samples), str(validation_fraction)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait until the optimisation runs (the progress bar has moved), then press Ctrl-C.
        deadline = time.monotonic() + 300
        seen = ""
        while time.monotonic() < deadline and process.poll() is None:
            seen += process.stderr.read(1)
            if stage in seen and "loss=" in seen:
                break
        process.send_signal(signal.SIGINT)
        # The threads' fits stop at their next chunk: the process ends at once.
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "interrupted; fitted: False" in stdout, seen + stderr
    assert "fit was interrupted" in stderr


def test_interrupted_save_leaves_nothing_half_written(fitted_toy, tmp_path, monkeypatch):
    path = fitted_toy.save(tmp_path / "model.bprsn")
    before = path.read_bytes()
    calls = {"n": 0}
    original = zipfile.ZipFile.writestr

    def interrupted(self, name, data, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fitted_toy.save(path)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        fitted_toy.save(tmp_path / "new.bprsn")
    monkeypatch.undo()
    assert path.read_bytes() == before  # the earlier model is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bprsn"]  # no partial files
    bayes_prsn.load(path)


def test_memory_guard(fitted_toy):
    need = fitted_toy.posterior_memory_gb(4 * 2000)
    # 240 samples, rank 3, 2 predictors: about 10 kB per draw.
    assert need == pytest.approx(8000 * (4 * (240 * 3 + 1) + 8 * 240 * 5) / 1e9)
    with pytest.raises(MemoryError, match=r"need about 0\.10 GB .*\(thinning=k\)"):
        fitted_toy.sample_posterior(max_memory_gb=0.01)
    with pytest.raises(MemoryError, match="method='vi'"):
        fitted_toy.sample_posterior("laplace", num_samples=10**6, max_memory_gb=1.0)
    with pytest.raises(ValueError, match="thinning must be an integer >= 1"):
        fitted_toy.sample_posterior(thinning=0)
    assert "idata_" not in fitted_toy.__dict__


# ----------------------------------------------------------------- extremes
@pytest.fixture(scope="module")
def base():
    return simulate.make_toy(n_samples=120, random_state=11)


QUICK = dict(validation_fraction=0.0, max_steps=1500, random_state=0, n_neighbors=10)


def _fit(X, y, covariates, cls=PersonalizedRegression, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(**{**QUICK, **settings}).fit(X, y, covariates=covariates)


def test_collinear_predictors_fit_with_finite_coefficients(base):
    X = np.column_stack([base.X, base.X[:, 0] * 2.0])  # column 3 = 2 x column 1
    est = _fit(X, base.y, base.covariates)
    assert np.all(np.isfinite(est.coef_))
    # The fit is of the sum: predictions match the non-collinear fit closely.
    plain = _fit(base.X, base.y, base.covariates)
    assert (
        np.corrcoef(est.predict(X, base.covariates), plain.predict(base.X, base.covariates))[0, 1]
        > 0.99
    )


def test_more_predictors_than_samples(base):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 60))
    est = _fit(X, base.y[:40], base.covariates.iloc[:40], n_neighbors=5)
    assert est.coef_.shape == (40, 60) and np.all(np.isfinite(est.coef_))


def test_constant_y(base):
    est = _fit(base.X, np.full(120, 3.0), base.covariates)
    np.testing.assert_allclose(est.predict(base.X, base.covariates), 3.0, atol=1e-6)
    assert np.all(np.isfinite(est.coef_))


@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_y_in_huge_or_tiny_units(base, scale):
    plain = _fit(base.X, base.y, base.covariates)
    scaled = _fit(base.X, base.y * scale, base.covariates)
    # Internal scaling makes the fit unit-free: coefficients scale with y.
    np.testing.assert_allclose(scaled.coef_ / scale, plain.coef_, rtol=1e-3, atol=1e-6)


def test_covariate_with_one_value_or_all_missing(base):
    one_value = base.covariates.assign(site="A", empty=np.nan)
    with pytest.warns(UserWarning, match=r"\['site', 'empty'\] are constant or entirely missing"):
        est = _fit(base.X, base.y, one_value)
    assert est.covariate_names_used_ == ["u"]
    only_bad = pd.DataFrame({"site": ["A"] * 120, "empty": np.nan})
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no usable column"):
        _fit(base.X, base.y, only_bad)


def test_perfect_separation_in_the_classifier(base):
    y = (base.X[:, 0] > 0).astype(int)  # separable by the first predictor
    est = _fit(base.X, y, base.covariates, cls=PersonalizedClassifier)
    assert np.all(np.isfinite(est.coef_))
    assert est.score(base.X, y, base.covariates) > 0.95


def test_poisson_counts_up_to_1e5(base):
    rng = np.random.default_rng(0)
    rate = np.exp(8.0 + 3.5 * base.X[:, 0].clip(-1, 1))  # up to about 1e5
    y = rng.poisson(rate)
    assert y.max() > 5e4
    est = _fit(base.X, y, base.covariates, family="poisson")
    assert np.all(np.isfinite(est.coef_))
    assert np.median(np.abs(est.coef_[:, 0] - 3.5)) < 0.5


def test_interrupted_sample_posterior_leaves_the_estimator_as_it_was(framed, monkeypatch):
    data, X, covariates = framed
    est = PersonalizedRegression(random_state=0).fit(X, data.y, covariates=covariates)
    est.sample_posterior("laplace", num_samples=20, random_state=0)
    before = est.idata_

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(bayes_prsn.sampling.BACKENDS, "laplace", interrupted)
    monkeypatch.setitem(bayes_prsn.sampling.SHARED_BACKENDS, "laplace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.sample_posterior("laplace", num_samples=20, random_state=1)
    assert est.idata_ is before and est.posterior_method_ == "laplace"


class _Payload:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_loading_never_runs_code(fitted_toy, tmp_path):
    import hashlib
    import io
    import json

    path = fitted_toy.save(tmp_path / "model.bprsn")
    marker = tmp_path / "code-ran"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["arrays/coef_.npy"] = buffer.getvalue()
    metadata = json.loads(members["metadata.json"])
    metadata["checksums"]["arrays/coef_.npy"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    members["metadata.json"] = json.dumps(metadata).encode()
    evil = tmp_path / "evil.bprsn"
    with zipfile.ZipFile(evil, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(bayes_prsn.ModelFileError, match="array coef_ cannot be read"):
        bayes_prsn.load(evil)
    assert not marker.exists()
