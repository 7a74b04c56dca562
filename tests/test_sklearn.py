"""The estimators as scikit-learn citizens: params, clone, routing, covariate_columns.

scikit-learn's own estimator checks are in ``test_sklearn_checks.py``.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bayes_prsn import ConvergenceWarning, PersonalizedClassifier, PersonalizedRegression, simulate

# Short fits inside the scikit-learn tools; their convergence is not what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore::bayes_prsn.svi.ConvergenceWarning")


def test_params_clone_repr():
    est = PersonalizedRegression(rank=2, gamma=3.0, covariate_columns=["age"])
    params = est.get_params()
    assert params["rank"] == 2 and params["gamma"] == 3.0
    assert params["covariate_columns"] == ["age"]
    copy = clone(est)
    assert copy.get_params() == params and copy is not est
    assert "rank=2" in repr(est) and "gamma=3.0" in repr(est)
    est.set_params(rank=4)
    assert est.rank == 4
    classifier = PersonalizedClassifier(rank=2)
    assert "family" not in classifier.get_params()
    assert clone(classifier).get_params() == classifier.get_params()
    assert classifier.family == "bernoulli"
    with pytest.raises(ValueError, match="Invalid parameter 'family'"):
        classifier.set_params(family="gaussian")


@pytest.fixture(scope="module")
def toy_frame():
    """The Figure-1 toy with its covariate and a pure-noise column in one DataFrame."""
    data = simulate.make_toy(n_samples=150, random_state=3)
    rng = np.random.default_rng(1234)  # not the seed of make_toy, whose u it would repeat
    frame = pd.DataFrame(data.X, columns=["x0", "x1"])
    frame["u"] = data.covariates["u"].to_numpy()
    frame["noise"] = rng.uniform(-1, 1, data.n_samples)
    return data, frame


def _population_cv(frame, y, cv):
    return cross_val_score(LinearRegression(), frame[["x0", "x1"]], y, cv=cv).mean()


def test_covariate_columns_by_name_and_position(toy_frame):
    data, frame = toy_frame
    settings = dict(random_state=0, max_steps=1500)
    by_name = PersonalizedRegression(covariate_columns=["u"], **settings)
    by_name.fit(frame[["x0", "x1", "u"]], data.y)
    assert by_name.n_features_in_ == 3 and by_name.n_predictors_ == 2
    assert list(by_name.feature_names_in_) == ["x0", "x1", "u"]
    assert by_name.feature_names_ == ["x0", "x1"] and by_name.coef_.shape == (150, 2)
    explicit = PersonalizedRegression(**settings).fit(
        frame[["x0", "x1"]], data.y, covariates=frame[["u"]]
    )
    np.testing.assert_array_equal(by_name.coef_, explicit.coef_)
    np.testing.assert_array_equal(
        by_name.predict(frame[["x0", "x1", "u"]]),
        explicit.predict(frame[["x0", "x1"]], covariates=frame[["u"]]),
    )
    np.testing.assert_array_equal(
        by_name.predict_coef(frame[["x0", "x1", "u"]]), explicit.predict_coef(frame[["u"]])
    )
    by_position = PersonalizedRegression(covariate_columns=[2], **settings)
    by_position.fit(frame[["x0", "x1", "u"]].to_numpy(), data.y)
    assert not hasattr(by_position, "feature_names_in_")
    np.testing.assert_allclose(by_position.coef_, explicit.coef_)


def test_covariate_columns_errors(toy_frame):
    data, frame = toy_frame
    X = frame[["x0", "x1", "u"]]
    with pytest.raises(ValueError, match="not both"):
        PersonalizedRegression(covariate_columns=["u"]).fit(X, data.y, covariates=frame[["u"]])
    with pytest.raises(ValueError, match=r"covariate_columns \['age'\] are not columns of X"):
        PersonalizedRegression(covariate_columns=["age"]).fit(X, data.y)
    with pytest.raises(ValueError, match="an array has no names"):
        PersonalizedRegression(covariate_columns=["u"]).fit(X.to_numpy(), data.y)
    text_predictor = r"column\(s\) \['tissue'\] are not\. With covariate_columns"
    with pytest.raises(TypeError, match=text_predictor):
        PersonalizedRegression(covariate_columns=["u"]).fit(X.assign(tissue="a"), data.y)
    with pytest.raises(ValueError, match="leaving no predictor"):
        PersonalizedRegression(covariate_columns=["x0", "x1", "u"]).fit(X, data.y)
    fitted = PersonalizedRegression(covariate_columns=["u"], max_steps=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted.fit(X, data.y)
    # A frame is checked by column names first, an array by its number of columns.
    with pytest.raises(ValueError, match="seen at fit time, yet now missing:\n- u"):
        fitted.predict(X[["x0", "x1"]])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        with pytest.raises(
            ValueError, match="X has 2 features, but PersonalizedRegression is expecting 3"
        ):
            fitted.predict(X[["x0", "x1"]].to_numpy())


def test_cross_val_score_and_grid_search_with_routing(toy_frame):
    """Covariates reach fit, predict and score through metadata routing, split by fold."""
    data, frame = toy_frame
    X, covariates = frame[["x0", "x1"]], frame[["u"]]
    cv = KFold(3, shuffle=True, random_state=0)
    est = PersonalizedRegression(random_state=0, max_steps=1500)
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(est, X, data.y, cv=cv, params={"covariates": covariates})
        search = GridSearchCV(est, {"rank": [1, 3]}, cv=cv).fit(X, data.y, covariates=covariates)
        refit_score = search.score(X, data.y, covariates=covariates)
    population = _population_cv(frame, data.y, cv)
    # The toy's coefficients change sign with u: personalization must beat one model
    # clearly on held-out folds.
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    assert scores.mean() > population + 0.2
    # The toy's two coefficients vary along different directions as u changes
    # (u and +-(1 - u^2)): one code (rank 1) moves both along one direction of
    # Q and cannot follow them, so the search must prefer rank 3.
    assert search.best_params_ == {"rank": 3}, search.cv_results_["mean_test_score"]
    assert search.best_score_ > population + 0.2
    assert refit_score > 0.5


def test_grid_search_chooses_the_informative_covariate(toy_frame):
    """Without routing: covariate_columns is a parameter like any other."""
    data, frame = toy_frame
    est = PersonalizedRegression(covariate_columns=["u"], random_state=0, max_steps=1500)
    cv = KFold(2, shuffle=True, random_state=1)
    search = GridSearchCV(est, {"covariate_columns": [["noise"], ["u"]]}, cv=cv)
    search.fit(frame, data.y)
    assert search.best_params_ == {"covariate_columns": ["u"]}
    # Measured: mean held-out R^2 0.60 with u against 0.01 with the noise column.
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] + 0.2


def test_pipeline_with_covariates(toy_frame):
    data, frame = toy_frame
    X, covariates = frame[["x0", "x1"]], frame[["u"]]
    pipe = make_pipeline(StandardScaler(), PersonalizedRegression(random_state=0, max_steps=1500))
    with sklearn.config_context(enable_metadata_routing=True):
        pipe.fit(X, data.y, covariates=covariates)
        routed = pipe.score(X, data.y, covariates=covariates)
    direct = PersonalizedRegression(random_state=0, max_steps=1500).fit(
        X, data.y, covariates=covariates
    )
    # Scaling X first changes nothing the model sees (it standardises internally).
    assert routed == pytest.approx(direct.score(X, data.y, covariates=covariates), abs=0.02)
    # Without routing: the scaler keeps names, the estimator takes "u" from X.
    pipe = make_pipeline(
        StandardScaler().set_output(transform="pandas"),
        PersonalizedRegression(covariate_columns=["u"], random_state=0, max_steps=1500),
    )
    pipe.fit(frame[["x0", "x1", "u"]], data.y)
    assert pipe.score(frame[["x0", "x1", "u"]], data.y) > 0.5


def test_classifier_labels(logistic):
    """Any two labels: classes_ keeps them, predict returns them."""
    labels = np.where(logistic.y == 1, "responder", "non-responder")
    est = PersonalizedClassifier(random_state=0, max_steps=800, validation_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(logistic.X, labels, covariates=logistic.covariates)
    assert list(est.classes_) == ["non-responder", "responder"]
    predicted = est.predict(logistic.X, logistic.covariates)
    assert set(predicted) <= set(est.classes_)
    assert est.score(logistic.X, labels, logistic.covariates) > 0.6
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        est.fit(logistic.X, np.arange(len(labels)) % 3, covariates=logistic.covariates)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        est.fit(logistic.X, logistic.X[:, 0], covariates=logistic.covariates)
