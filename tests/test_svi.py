"""The MAP back-end: stopping rule, loss history, non-finite losses, progress bar."""

import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

from bayes_prsn import ConvergenceWarning, PersonalizedRegression
from bayes_prsn.svi import run_svi


@pytest.fixture(scope="module")
def problem(request):
    from bayes_prsn import simulate

    data = simulate.make_toy(n_samples=80, random_state=3)
    from bayes_prsn.inputs import check_settings
    from bayes_prsn.problem import build_problem

    est = PersonalizedRegression(n_neighbors=5, random_state=0)
    prob = build_problem(data.X, data.y, data.covariates, check_settings(est, "gaussian"))
    kwargs = dict(prob.data, **prob.settings, noise_scale=0.5)
    return kwargs, prob.init


def _run(problem, **options):
    kwargs, init = problem
    return run_svi(jax.random.PRNGKey(0), kwargs, init, family="gaussian", rank=3, **options)


def test_stopping_rule_and_history(problem):
    loose = _run(problem, tol=1e-1, min_steps=200, max_steps=3000)
    assert loose.converged and loose.num_steps < 3000
    assert loose.losses.shape == (loose.num_steps,)
    assert loose.num_steps % 100 == 0 and loose.num_steps >= 200
    # the loss goes down from the population start
    assert loose.losses[-50:].mean() < loose.losses[:50].mean()
    tight = _run(problem, tol=1e-12, min_steps=100, max_steps=300, warn=False)
    assert not tight.converged and tight.num_steps == 300


def test_non_finite_start_is_an_error(problem):
    kwargs, init = problem
    bad = dict(init, offset=np.full_like(init["offset"], np.nan))
    with pytest.raises(FloatingPointError, match="not finite at the starting point"):
        run_svi(jax.random.PRNGKey(0), kwargs, bad, family="gaussian", rank=3)


def test_progress_bar(problem, capsys):
    _run(problem, max_steps=200, min_steps=100, progress_bar=True, warn=False)
    assert "MAP (SVI)" in capsys.readouterr().err


def test_minibatch_step_moves_only_the_drawn_codes(problem):
    """A minibatch step updates the codes of the samples it draws and no others.

    One step of 2 samples and 2 pairs touches at most 6 of the 80 codes; the
    rest must stay exactly where they were (the step costs O(B + B_p), not
    O(N)). Adam's first step moves a coordinate by the step size times
    |g| / (|g| + 1e-8) (its moments' bias correction is per row): at most the
    step size, and the step size itself wherever the gradient is not tiny
    (pair-only rows, with gamma 0.1 and close codes, move 2-3% less).
    """
    start = np.asarray(problem[1]["code_residual"], dtype=np.float32)

    def moved_codes(steps):
        """Run ``steps`` steps of 2 samples and 2 pairs (one chunk): losses, code moves."""
        result = _run(
            problem,
            encoder_width=16,
            batch_sizes=(2, 2),
            max_steps=steps,
            min_steps=1,
            chunk_size=steps,
            step_size=0.02,
            warn=False,
        )
        assert result.num_steps == steps
        return result.losses, result.params["code_residual"] - start

    _, moved = moved_codes(1)
    changed = np.any(moved != 0, axis=1)
    assert 1 <= changed.sum() <= 6
    assert np.abs(moved).max() <= 0.02 * (1 + 1e-5)
    np.testing.assert_allclose(np.median(np.abs(moved[changed])), 0.02, rtol=1e-3)
    # Ten steps touch at most 60 rows: the other codes stay put.
    losses, moved = moved_codes(10)
    assert np.all(np.isfinite(losses))
    assert 1 <= np.any(moved != 0, axis=1).sum() <= 60


@pytest.mark.parametrize("family", ["gaussian", "poisson"])
@pytest.mark.parametrize("encoder_width", [0, 16])
def test_padding_rows_add_nothing_to_the_density(problem, family, encoder_width):
    """Padded rows (``svi.pad_samples``) change neither the log density nor any shared
    site's gradient beyond float32 rounding, whatever their codes, and get no gradient."""
    from bayes_prsn.models import CODE_SITES, personalized_regression
    from numpyro.infer.util import log_density

    from bayes_prsn.svi import pad_samples

    kwargs, init = problem
    kwargs = dict(kwargs, likelihood_mask=np.arange(80) % 5 != 0)  # a held-out fold too
    if family == "poisson":
        kwargs = dict(kwargs, y=np.round(np.abs(kwargs["y"]) * 3), noise_scale=None)
    rng = np.random.default_rng(0)
    site = CODE_SITES[1] if encoder_width else CODE_SITES[0]
    start = {k: v for k, v in init.items() if encoder_width or not k.startswith("encoder")}
    start[site] = start.pop("code_residual")
    # Away from the population start, so that every term has a gradient.
    params = {k: np.asarray(v) + 0.1 * rng.standard_normal(np.shape(v)) for k, v in start.items()}
    params["covariate_weights"] = np.abs(params["covariate_weights"])
    if family == "gaussian":
        params["noise_scale"] = np.asarray(0.7)
    static = {"family": family, "rank": 3, "encoder_width": encoder_width}
    padded_kwargs, padded_params = pad_samples(kwargs, params, 96)
    # The padding rows' codes are anything: they must not matter.
    padded_params[site][80:] = rng.standard_normal((16, 3))
    model_kwargs = {
        k: v for k, v in kwargs.items() if k not in ("X", "pairs", "pair_distances", "y")
    }
    padded_model_kwargs = {
        k: v for k, v in padded_kwargs.items() if k not in ("X", "pairs", "pair_distances", "y")
    }

    def value(p, arguments, options):
        args = (arguments["X"], arguments["pairs"], arguments["pair_distances"], arguments["y"])
        return log_density(personalized_regression, args, {**static, **options}, p)[0]

    base, base_grad = jax.value_and_grad(value)(params, kwargs, model_kwargs)
    padded, padded_grad = jax.value_and_grad(value)(
        padded_params, padded_kwargs, padded_model_kwargs
    )
    assert padded_kwargs["X"].shape[0] == 96 and padded_kwargs["sample_mask"].sum() == 80
    np.testing.assert_allclose(float(padded), float(base), rtol=1e-6)
    for name, grad in base_grad.items():
        got = np.asarray(padded_grad[name])
        if name == site:
            assert np.all(got[80:] == 0.0), "a padding row's code has a gradient"
            got = got[:80]
        scale = np.abs(np.asarray(grad)).max() + 1e-6
        np.testing.assert_allclose(got, np.asarray(grad), atol=1e-5 * scale, rtol=1e-5)


def test_sizes_of_one_bucket_share_the_compiled_steps():
    """Fits of 25 and 29 samples run as 32 rows (and one pair bucket): one compilation."""
    from bayes_prsn.svi import _compiled, sample_bucket

    assert [sample_bucket(n) for n in (1, 32, 33, 200, 2000)] == [32, 32, 40, 224, 2048]
    assert all(n <= sample_bucket(n) <= 1.25 * n for n in range(33, 5000))
    rng = np.random.default_rng(0)
    settings = dict(n_neighbors=3, max_steps=100, validation_fraction=0.0, random_state=0)
    compiled = []
    for n in (25, 29):
        X, U = rng.standard_normal((n, 2)), rng.standard_normal((n, 1))
        y = X[:, 0] * (1 + U[:, 0]) + 0.1 * rng.standard_normal(n)
        before = _compiled.cache_info().misses
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 100 steps: not the point
            fit = PersonalizedRegression(**settings).fit(X, y, covariates=U)
        compiled.append(_compiled.cache_info().misses - before)
    assert compiled[1] == 0
    assert fit.coef_.shape == (29, 2) and np.all(np.isfinite(fit.coef_))


_LOSSES_SCRIPT = """
import numpy as np
from bayes_prsn import PersonalizedRegression, simulate

data = simulate.make_small_low_rank(n_samples=60, random_state=0)
est = PersonalizedRegression(random_state=0, noise_scale=1.0, max_steps=200)
est.fit(data.X, data.y, covariates=data.covariates)
print(np.asarray(est.loss_history_, dtype=np.float32).tobytes().hex())
"""


def test_losses_do_not_depend_on_string_hashing():
    """The same fit in processes with other string hashes has the same losses, bit for bit.

    NumPyro's ``Trace_ELBO`` sums the sites' terms in the order of a ``set`` of
    their names; with it these losses differed in their last bits between
    ``PYTHONHASHSEED`` 1 and 4, and at 20,000 samples the stopping rule then
    ended a fit at another step (``svi.SortedTraceELBO``).
    """
    losses = []
    for seed in ("1", "4"):
        env = dict(os.environ, PYTHONHASHSEED=seed, JAX_PLATFORMS="cpu")
        result = subprocess.run(
            [sys.executable, "-c", _LOSSES_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        losses.append(result.stdout.strip().splitlines()[-1])
    assert losses[0] == losses[1]


def _stops(rule, change: float, n_chunks: int = 5) -> bool:
    """Whether ``rule`` stops on chunks whose mean loss falls by ``change`` from 1e6."""
    chunks = [np.full(100, 1e6 - change * i) for i in range(n_chunks)]
    return any(rule(chunks[: i + 1]) for i in range(n_chunks))


def test_stopping_rule_caps_the_loss_it_is_relative_to():
    """A large loss does not turn ``tol`` into a large absolute change.

    A chunk-to-chunk change of 50 nats on a loss of 1e6 is 5e-5 relative
    (below tol=1e-4: the relative rule stops) but 2.5e-3 of a loss capped
    at 2e4 nats (it goes on); a change of 1 nat (5e-5 of the cap) stops.
    """
    from bayes_prsn.svi import stopping_rule

    assert _stops(stopping_rule(1e-4, 2, 100, 100), 50.0)
    assert not _stops(stopping_rule(1e-4, 2, 100, 100, loss_scale_cap=2e4), 50.0)
    assert _stops(stopping_rule(1e-4, 2, 100, 100, loss_scale_cap=2e4), 1.0)


class _CountingChunks:
    """Stand-in compiled chunks: the state is the chunk count, the parameter its square."""

    def __call__(self, state, index):
        return state + 1, np.zeros(100)

    def get_params(self, state):
        return {"offset_auto_loc": np.array([float(state) ** 2])}


def test_minibatch_runs_average_their_last_chunks():
    """A fixed schedule ends on the mean of its last chunks' parameters (a third, at most 10).

    30 chunks: the mean of chunks 21 to 30's parameters; 3 chunks: the last
    chunk's parameters themselves (the same object, so the same bits).
    """
    from bayes_prsn.svi import AVERAGED_CHUNKS, _AveragedChunks, run_chunks

    for max_steps, kept in ((3000, range(21, 31)), (300, [3]), (1200, range(9, 13))):
        runner = _AveragedChunks(_CountingChunks(), max_steps, 100)
        state, losses, stopped = run_chunks(runner, 0, max_steps=max_steps, chunk_size=100)
        assert state == max_steps // 100 and not stopped and len(losses) == max_steps
        expected = np.mean([float(k) ** 2 for k in kept])
        assert float(runner.mean()["offset_auto_loc"][0]) == pytest.approx(expected)
        assert runner.count == min(AVERAGED_CHUNKS, max(1, max_steps // 300))
