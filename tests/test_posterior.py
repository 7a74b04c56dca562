"""Posterior back-ends, ArviZ data, intervals, summaries and predictive intervals."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_prsn import (
    NotFittedError,
    PersonalizedRegression,
    arviz_compat,
)
from bayes_prsn.inference_data import interval
from bayes_prsn.posterior import run_nuts

GROUPS = {
    "posterior",
    "sample_stats",
    "log_likelihood",
    "posterior_predictive",
    "observed_data",
    "constant_data",
}


def test_groups_dims_and_coords(short_nuts, framed):
    estimator, _ = short_nuts
    _, X, covariates = framed
    idata = estimator.idata_
    assert GROUPS <= set(arviz_compat.group_names(idata))
    posterior = arviz_compat.group(idata, "posterior")
    assert posterior["coef"].dims == ("chain", "draw", "obs_id", "feature")
    assert posterior["coef"].shape == (2, 20, 120, 3)
    assert posterior["intercept"].dims == ("chain", "draw", "obs_id")
    # The shared parts are sampled; the metric's weights are held at the MAP.
    assert "covariate_weights" not in posterior
    assert posterior["noise_scale"].dims == ("chain", "draw")
    assert list(posterior["obs_id"].values) == list(X.index)
    assert list(posterior["feature"].values) == ["a", "b", "c"]
    constant = arviz_compat.group(idata, "constant_data")
    assert constant["covariate_weights"].dims == ("covariate",)
    assert list(constant["covariate"].values) == list(covariates.columns)
    np.testing.assert_allclose(constant["covariate_weights"].values, estimator.covariate_weights_)
    assert list(arviz_compat.group(idata, "log_likelihood").data_vars) == ["y"]
    assert np.all(np.isfinite(arviz_compat.group(idata, "log_likelihood")["y"].values))
    stats = arviz_compat.group(idata, "sample_stats")
    assert {"diverging", "lp", "acceptance_rate", "tree_depth"} <= set(stats.data_vars)
    constant = arviz_compat.group(idata, "constant_data")
    noise_scale = constant["noise_scale"].values.ravel()[0]
    assert noise_scale == pytest.approx(estimator.posterior_noise_scale_)


def test_short_run_warns_with_numbers(short_nuts):
    estimator, caught = short_nuts
    assert caught, "a 20-draw NUTS run must be reported as not converged"
    message = str(caught[0].message)
    assert "R-hat" in message or "ESS" in message
    assert estimator.posterior_diagnostics_["converged"] is False
    assert estimator.posterior_diagnostics_["min_ess_bulk"] < 200


def test_posterior_mean_near_map(short_nuts):
    estimator, _ = short_nuts
    draws = arviz_compat.group(estimator.idata_, "posterior")["coef"].values
    mean = draws.mean(axis=(0, 1))
    spread = estimator.coef_.std(axis=0)
    # The conditional posterior is centred at the MAP fit (same smoothing).
    assert np.mean(np.abs(mean - estimator.coef_)) < 0.5 * spread.mean()


def test_loo_and_waic_work(short_nuts):
    az = arviz_compat.arviz()
    with warnings.catch_warnings():
        # 40 draws give unreliable Pareto k estimates; the call itself must work.
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(short_nuts[0].idata_)
    text = str(loo)
    assert "elpd" in text.lower()


def test_coef_interval(short_nuts):
    estimator, _ = short_nuts
    for kind in ("hdi", "eti"):
        lower, upper = estimator.coef_interval(0.9, kind=kind)
        assert lower.shape == upper.shape == estimator.coef_.shape
        assert np.all(lower <= upper)
    narrow = estimator.coef_interval(0.5)
    wide = estimator.coef_interval(0.95)
    assert np.all(narrow[1] - narrow[0] <= wide[1] - wide[0] + 1e-9)
    lower, upper = estimator.intercept_interval(0.9)
    assert lower.shape == (120,)


@pytest.mark.parametrize("prob", [0, 1, 1.5, -0.1, "0.9", True])
def test_bad_prob(short_nuts, prob):
    with pytest.raises(ValueError, match="prob"):
        short_nuts[0].coef_interval(prob)


def test_bad_kind(short_nuts):
    with pytest.raises(ValueError, match="kind must be one of"):
        short_nuts[0].coef_interval(0.9, kind="central")


def test_interval_helper_matches_truth():
    draws = np.random.default_rng(0).standard_normal((20000, 2))
    lower, upper = interval(draws, 0.9, "eti")
    np.testing.assert_allclose(lower, -1.645, atol=0.05)
    np.testing.assert_allclose(upper, 1.645, atol=0.05)
    lower, upper = interval(draws, 0.9, "hdi")
    np.testing.assert_allclose(upper - lower, 3.29, atol=0.08)


def test_summary(short_nuts):
    estimator, _ = short_nuts
    table = estimator.summary(samples=["s0", "s3"])
    assert {"mean", "sd", "hdi_5%", "hdi_95%", "ess_bulk", "ess_tail", "r_hat"} <= set(
        table.columns
    )
    assert "coef[s0, a]" in table.index
    assert "intercept[s3]" in table.index
    assert len(table.filter(like="coef[", axis=0)) == 2 * 3
    noise = estimator.summary(var_names="noise_scale")
    assert list(noise.index) == ["noise_scale"]
    with pytest.raises(ValueError, match="not in the posterior"):
        estimator.summary(var_names=["theta"])
    with pytest.raises(ValueError, match="not sample labels"):
        estimator.summary(samples=["nobody"])


def test_predictive_interval(short_nuts, framed):
    estimator, _ = short_nuts
    _, X, covariates = framed
    mean, lower, upper = estimator.predict(X.iloc[:10], covariates.iloc[:10], return_interval=True)
    assert mean.shape == lower.shape == upper.shape == (10,)
    assert np.all(lower < upper)
    np.testing.assert_allclose(mean, estimator.predict(X.iloc[:10], covariates.iloc[:10]))
    # With the noise included, the interval is at least about 2 * 1.645 sigma wide.
    assert np.median(upper - lower) > 2.5 * estimator.posterior_noise_scale_


def test_errors_before_posterior(fitted_toy, toy):
    with pytest.raises(NotFittedError, match="sample_posterior"):
        fitted_toy.coef_interval()
    # summary() of a plain fit is the MAP overview, without posterior columns.
    assert "sd" in fitted_toy.summary().columns and "r_hat" not in fitted_toy.summary().columns
    with pytest.raises(NotFittedError, match="sample_posterior"):
        fitted_toy.predict(toy.X[:3], toy.covariates.iloc[:3], return_interval=True)
    with pytest.raises(
        ValueError, match=r"method must be 'auto' or one of \('nuts', 'laplace', 'vi'\)"
    ):
        fitted_toy.sample_posterior(method="hmc")
    with pytest.raises(NotFittedError, match="not fitted"):
        PersonalizedRegression().sample_posterior()


@pytest.mark.parametrize("method", ["laplace", "vi"])
def test_approximations(method, framed):
    data, X, covariates = framed
    estimator = PersonalizedRegression(random_state=0).fit(X, data.y, covariates=covariates)
    options = {"num_steps": 500} if method == "vi" else {}
    idata = estimator.sample_posterior(method=method, num_samples=200, random_state=0, **options)
    posterior = arviz_compat.group(idata, "posterior")
    assert posterior["coef"].shape == (1, 200, 120, 3)
    assert "sample_stats" not in arviz_compat.group_names(idata)
    lower, upper = estimator.coef_interval()
    assert np.all(np.isfinite(lower)) and np.all(lower < upper)
    # Centred near the MAP fit.
    centre = posterior["coef"].values.mean(axis=(0, 1))
    assert np.mean(np.abs(centre - estimator.coef_)) < 0.5 * estimator.coef_.std(axis=0).mean()


def test_a_second_laplace_posterior_compiles_nothing(fitted_toy_copy):
    """The same model's posterior again (another seed) runs the programs the first compiled.

    The Jacobian of the shared parts (``evidence._jacobian_blocks``) was a new
    closure in every call and compiled again each time (0.3-0.5 s per call,
    and per pooled refit).
    """
    import jax.monitoring

    compiled = []

    def on_duration(event, seconds, **_):
        if event.endswith("backend_compile_duration"):
            compiled.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        fitted_toy_copy.sample_posterior("laplace", num_samples=100, random_state=0)
        compiled.clear()
        fitted_toy_copy.sample_posterior("laplace", num_samples=100, random_state=1)
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
    assert compiled == []


def test_classifier_probability_interval(fitted_classifier, logistic):
    fitted_classifier.sample_posterior(method="laplace", num_samples=100, random_state=0)
    proba, lower, upper = fitted_classifier.predict_proba(
        logistic.X[:8], logistic.covariates.iloc[:8], return_interval=True
    )
    assert proba.shape == (8, 2)
    assert np.all((lower >= 0) & (upper <= 1) & (lower <= upper))


def test_nuts_matches_closed_form_gaussian_posterior():
    """With Q, offset, phi fixed, known noise and no potential, Z_i | y is Gaussian.

    Precision :math:`\\Lambda_i = I / s_Z^2 + Q Q^T / \\tau^2 + (Q x_i)(Q x_i)^T / \\sigma^2`,
    mean :math:`\\Lambda_i^{-1} Q x_i (y_i - x_i^T \\bar\\theta) / \\sigma^2`.
    Tolerances: 5 Monte Carlo standard errors for means, 15% for (co)variances
    (4000 draws; the relative standard error of a variance is about 3%).
    """
    rng = np.random.default_rng(3)
    n, p, k, sigma, tau = 6, 3, 2, 0.5, 1.0
    X = rng.standard_normal((n, p))
    Q = rng.standard_normal((k, p))
    offset = rng.standard_normal(p)
    y = rng.standard_normal(n)
    pairs = np.array([[0, 1], [1, 2]])
    kwargs = {
        "X": X,
        "pairs": pairs,
        "pair_distances": np.ones((2, 1)),
        "y": y,
        "gamma": 0.0,
        "prior_scale": tau,
        "covariate_weight_scale": 1.0,
        "noise_scale": sigma,
    }
    fixed = {"dictionary": Q, "offset": offset, "covariate_weights": np.ones(1)}
    draws = run_nuts(
        jax.random.PRNGKey(0),
        kwargs,
        {"embedding": np.zeros((n, k))},
        fixed,
        family="gaussian",
        rank=k,
        num_warmup=300,
        num_samples=1000,
        num_chains=4,
        chain_method="vectorized",
    )
    z = draws.samples["embedding"].reshape(-1, n, k)
    assert not draws.sample_stats["diverging"].any()
    for i in range(n):
        qx = Q @ X[i]
        precision = np.eye(k) + Q @ Q.T / tau**2 + np.outer(qx, qx) / sigma**2
        covariance = np.linalg.inv(precision)
        mean = covariance @ qx * (y[i] - X[i] @ offset) / sigma**2
        standard_error = np.sqrt(np.diag(covariance) / z.shape[0]) * 2.0  # ESS >= draws / 4
        np.testing.assert_array_less(np.abs(z[:, i].mean(axis=0) - mean), 5 * standard_error)
        np.testing.assert_allclose(np.cov(z[:, i].T), covariance, rtol=0.15, atol=0.02)


def _code_target_potential(estimator):
    """The code target's potential of a fitted gaussian model, its MAP point (unconstrained,
    flat), the unravelling function and the target's (JAX) arguments."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy, unconstrain_fn

    from bayes_prsn.posterior import _as_jax, _model
    from bayes_prsn.sampling import target

    params = estimator.fit_state_.params
    kwargs, _, _ = target(estimator.fit_state_)
    model = _model(
        {"dictionary": params.dictionary, "offset": params.offset},
        family="gaussian",
        rank=estimator.rank,
        prior="normal",
        offset=True,
    )
    kwargs = _as_jax(kwargs)
    values = {"embedding": estimator.embedding_, "covariate_weights": estimator.covariate_weights_}
    flat, unravel = ravel_pytree(unconstrain_fn(model, (), kwargs, values))

    def potential(x):
        return potential_energy(model, (), kwargs, unravel(x))

    return potential, flat, unravel, kwargs


def test_block_hessian_matches_dense_blocks(short_nuts):
    """The colouring trick reads each sample's code block off the full Hessian exactly."""
    from bayes_prsn.posterior import _block_hessian

    estimator = short_nuts[0]
    n_samples = estimator.embedding_.shape[0]
    potential, flat, unravel, kwargs = _code_target_potential(estimator)
    dense = np.asarray(jax.hessian(potential)(flat))
    blocks, other, other_index, offsets = _block_hessian(
        potential,
        flat,
        unravel,
        ["covariate_weights", "embedding"],
        n_samples,
        estimator.rank,
        np.asarray(kwargs["pairs"]),
    )
    begin = offsets["embedding"][0]
    k = estimator.rank
    for i in (0, 7, n_samples - 1):
        rows = slice(begin + i * k, begin + (i + 1) * k)
        np.testing.assert_allclose(blocks[i], dense[rows, rows], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(other, dense[np.ix_(other_index, other_index)], rtol=1e-3, atol=1e-3)


def test_dense_hessian_matches_eager_hessian(short_nuts):
    """The dense Laplace path's Hessian (Hessian-vector products, one at a time) is the Hessian.

    On this target ``jax.jit(jax.hessian(potential))``, which that path used
    before, put values up to 320 where the Hessian has 0 to 0.11 (jax 0.10.2,
    CPU); the eager ``jax.hessian`` agrees with finite differences.
    """
    from bayes_prsn.posterior import dense_hessian

    potential, flat, _, _ = _code_target_potential(short_nuts[0])
    eager = np.asarray(jax.hessian(potential)(flat))
    scale = np.max(np.abs(eager))
    np.testing.assert_allclose(np.asarray(dense_hessian(potential, flat)), eager, atol=1e-5 * scale)
    # A finite-difference column: the one with the largest entry off the diagonal.
    column = int(np.argmax(np.abs(eager - np.diag(np.diag(eager))).max(axis=0)))
    step = jnp.zeros_like(flat).at[column].set(1e-3)
    gradient = jax.jit(jax.grad(potential))
    difference = (np.asarray(gradient(flat + step)) - np.asarray(gradient(flat - step))) / 2e-3
    np.testing.assert_allclose(difference, eager[:, column], atol=1e-2 * scale)


def test_a_hessian_that_disagrees_with_its_products_raises():
    """The check behind dense_hessian and the block Hessian names the problem and the way out."""
    from bayes_prsn.posterior import _check_products

    def hvp(direction):
        return 2.0 * direction

    directions = jnp.eye(3)
    _check_products(hvp, directions, 2.0 * directions)  # right: no error
    with pytest.raises(FloatingPointError, match=r"disagrees with a Hessian-vector product.*nuts"):
        _check_products(hvp, directions, 2.0 * directions + jnp.asarray([0.0, 5.0, 0.0]))


def test_diagnostics_agree_with_arviz():
    """Our vectorised R-hat and ESS follow ArviZ's definitions (ESS within 5%)."""
    from bayes_prsn import diagnostics

    rng = np.random.default_rng(0)
    draws = rng.standard_normal((4, 400, 4))
    draws[..., 1] += np.arange(4)[:, None] * 0.5  # chains that disagree
    draws[..., 2] = np.cumsum(rng.standard_normal((4, 400)), axis=1) * 0.1  # random walk
    draws[..., 3] = np.exp(draws[..., 3])  # skewed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(diagnostics.rhat(draws), arviz_compat.rhat(draws), atol=1e-3)
        np.testing.assert_allclose(
            diagnostics.ess_bulk(draws), arviz_compat.ess(draws, "bulk"), rtol=0.05
        )
        np.testing.assert_allclose(
            diagnostics.ess_tail(draws), arviz_compat.ess(draws, "tail"), rtol=0.05
        )
    assert diagnostics.rhat(draws)[1] > 1.1 and diagnostics.rhat(draws)[0] < 1.01


def test_diagnose_in_blocks_and_threads_gives_the_same_values(monkeypatch):
    """``diagnose`` (one rank normalisation for R-hat and bulk ESS) and the blocks.

    The three diagnostics together equal each on its own, and diagnosing 23
    elements in blocks of 3 in two threads gives the values of one block, to
    float64 rounding: each element's values depend on its own draws only.
    """
    from bayes_prsn import diagnostics

    rng = np.random.default_rng(1)
    draws = np.cumsum(rng.standard_normal((4, 300, 23)), axis=1) * 0.05
    draws += rng.standard_normal((4, 300, 23))
    draws[..., 5] = 2.0  # constant: NaN, as before
    draws[..., 7] = np.round(draws[..., 7], 1)  # ties
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        monkeypatch.setattr(diagnostics, "_CHUNK_VALUES", 10**9)
        monkeypatch.setattr(diagnostics, "_THREADS", 1)
        whole = {
            "rhat": diagnostics.rhat(draws),
            "ess_bulk": diagnostics.ess_bulk(draws),
            "ess_tail": diagnostics.ess_tail(draws),
        }
        together = diagnostics.diagnose(draws)
        monkeypatch.setattr(diagnostics, "_CHUNK_VALUES", 3 * 4 * 300)
        monkeypatch.setattr(diagnostics, "_THREADS", 2)
        blocks = diagnostics.diagnose(draws.reshape(4, 300, 23, 1))
    assert np.isnan(whole["rhat"][5]) and np.isfinite(whole["rhat"][7])
    for name, values in whole.items():
        assert values.shape == (23,)
        np.testing.assert_array_equal(together[name], values)
        # NumPy's vectorised reductions may round the last bit otherwise in a block.
        np.testing.assert_allclose(blocks[name], values[:, None], rtol=1e-12)
    for name, values in diagnostics.diagnose(np.zeros((4, 300, 0))).items():
        assert values.shape == (0,), name  # no elements: empty, as each function gives


@pytest.mark.parametrize("name", ["diagnose", "rhat", "ess_bulk", "ess_tail"])
def test_diagnostics_name_a_bad_shape(name):
    from bayes_prsn import diagnostics

    function = getattr(diagnostics, name)
    with pytest.raises(ValueError, match=r"shape \(chain, draw, \.\.\.\); got shape \(10,\)"):
        function(np.zeros(10))
    with pytest.raises(ValueError, match="at least 4 draws per chain; got 3"):
        function(np.zeros((2, 3, 5)))


def test_arviz_and_matplotlib_are_imported_lazily():
    import subprocess
    import sys

    code = (
        "import sys, bayes_prsn, bayes_prsn.plots, bayes_prsn.posterior;"
        "print('arviz' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
