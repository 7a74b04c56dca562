"""The estimators' default settings, defined once.

Both estimators' signatures and the ``bayes-prsn`` command line read their
defaults from :data:`DEFAULTS`, so the same data and seed give the same model
in Python and in a shell. This module imports nothing heavy: ``bayes-prsn
--help`` shows the defaults without starting JAX.
"""

from __future__ import annotations

__all__ = ["DEFAULTS", "FAMILY_NAMES", "POSTERIOR_DEFAULTS"]

#: Every ``__init__`` argument of :class:`~bayes_prsn.PersonalizedRegression`
#: (``PersonalizedClassifier`` takes the same, without ``family`` and
#: ``noise_scale``), with its default.
DEFAULTS = {
    "family": "gaussian",
    "rank": 3,
    "n_neighbors": 25,
    "gamma": 0.1,
    "prior": "normal",
    "prior_scale": "auto",
    "covariate_weight_scale": 10.0,
    "noise_scale": "auto",
    "df": None,
    "fit_intercept": True,
    "offset": True,
    "encoder_width": 16,
    "predict_method": "neighbors",
    "validation_fraction": 0.2,
    "step_size": 0.02,
    "max_steps": 3000,
    "tol": 1e-4,
    "progress_bar": False,
    "random_state": None,
    "covariate_columns": None,
    "devices": None,
    "batch_size": "auto",
    "n_jobs": -1,
    "n_fits": "auto",
}

#: Defaults of :meth:`~bayes_prsn.PersonalizedRegression.sample_posterior`
#: (``num_samples`` None: 2000 per chain for NUTS, 1000 in all otherwise).
POSTERIOR_DEFAULTS = {
    "method": "auto",
    "num_warmup": 1000,
    "num_samples": None,
    "num_chains": 4,
    "thinning": 1,
}

#: The names of ``bayes_prsn.models.FAMILIES``, for the command line's choices without
#: importing JAX (``tests/test_families.py`` checks that the two agree).
FAMILY_NAMES = (
    "gaussian",
    "bernoulli",
    "poisson",
    "student_t",
    "negative_binomial",
    "binomial",
    "gamma",
)
