"""The MAP back-end: stopping rule, loss history, non-finite losses, progress bar."""

import jax
import numpy as np
import pytest

from bayes_prsn import PersonalizedRegression
from bayes_prsn.svi import run_svi


@pytest.fixture(scope="module")
def problem(request):
    from bayes_prsn import simulate

    data = simulate.make_toy(n_samples=80, random_state=3)
    est = PersonalizedRegression(n_neighbors=5, random_state=0)
    prob = est._setup(data.X, data.y, data.covariates)
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
