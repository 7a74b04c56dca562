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
