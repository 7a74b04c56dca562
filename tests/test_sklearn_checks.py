"""scikit-learn's estimator checks.

They run on estimators that take their covariates from X
(``covariate_columns="all"``), since the checks call ``fit(X, y)`` without
covariates. All of them pass except:

- ``check_array_api_input``: skipped by scikit-learn itself unless
  ``SCIPY_ARRAY_API=1`` is set (the model runs in JAX; array-API inputs are
  not supported).
- ``check_sample_weight_equivalence_on_dense_data``: an expected failure.
  It asks that integer weights give predictions equal to 1e-7 to those of
  the rows repeated. Repeating a row changes the neighbour graph (a copy is
  its own nearest neighbour) and the fit's random start, so the two fits
  agree only approximately (``tests/test_families.py`` checks how closely).
  The other sample-weight checks (ones as no weights, zeros as dropped rows,
  lists, Series, shapes, no overwriting) pass.

Multiclass checks are replaced by ``check_classifier_not_supporting_multiclass``
(the classifier is binary, declared in its tags). A file of their own, apart
from ``test_sklearn.py``, so that the two can run on different workers
(``pytest -n 2 --dist loadfile``).
"""

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from bayes_prsn import ConvergenceWarning, PersonalizedClassifier, PersonalizedRegression

# Short fits inside the scikit-learn tools; their convergence is not what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore::bayes_prsn.svi.ConvergenceWarning")

CHECK_SETTINGS = dict(
    covariate_columns="all", n_neighbors=3, max_steps=50, validation_fraction=0.0, random_state=0
)


@parametrize_with_checks(
    [PersonalizedRegression(**CHECK_SETTINGS), PersonalizedClassifier(**CHECK_SETTINGS)],
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # 50 steps are far too few to converge; the checks test the API, not the fit.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)
