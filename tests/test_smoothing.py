"""The smoothing choice: K-fold below 1,000 samples, the one-standard-error rule,
and the fallback to the population model."""

from types import SimpleNamespace

import numpy as np
import pytest

from bayes_prsn import PersonalizedRegression, simulate
from bayes_prsn.smoothing import (
    CROSS_VALIDATE_BELOW,
    FALLBACK_LIKELIHOOD_SCALE,
    confirmation_masks,
    held_out_masks,
    is_fallback,
    one_standard_error,
)


def test_small_data_is_cross_validated_large_data_split_once():
    rng = np.random.default_rng(0)
    masks = held_out_masks(rng, 151, 0.2)
    assert len(masks) == 5
    counts = np.sum(masks, axis=0)
    assert np.all(counts == 1), "every sample is held out exactly once"
    assert sorted(int(m.sum()) for m in masks) == [30, 30, 30, 30, 31]
    # From CROSS_VALIDATE_BELOW on: the one split of before (same random draws).
    n = CROSS_VALIDATE_BELOW
    (split,) = held_out_masks(np.random.default_rng(3), n, 0.2)
    np.testing.assert_array_equal(split, np.random.default_rng(3).random(n) < 0.2)
    assert held_out_masks(rng, 40, 0.0) == []
    assert held_out_masks(rng, 15, 0.2) == [], "folds of 3 samples are too small to compare"


def test_confirmation_folds_complete_the_split_to_a_partition():
    """With the one split, the confirmation folds hold out every sample exactly once."""
    rng = np.random.default_rng(5)
    (split,) = held_out_masks(rng, 2003, 0.2)
    more = confirmation_masks(rng, split, 0.2)
    assert len(more) == 4
    counts = split.astype(int) + np.sum(more, axis=0)
    assert np.all(counts == 1), "every sample is held out exactly once"
    sizes = [int(m.sum()) for m in more]
    assert max(sizes) - min(sizes) <= 1, sizes
    assert confirmation_masks(rng, np.arange(30) < 6, 0.2) == [], "folds of 6 are too small"


@pytest.mark.slow
def test_a_split_that_favours_the_population_is_checked_on_more_folds():
    """make_poisson, 2,000 samples (seed 1000; random_state 1 draws a split on which
    the per-sample models lose to the population GLM, 1.351 against 1.346 mean
    deviance): before falling back, the chosen candidate is scored on the other
    four folds of a 5-fold partition, where it wins, so the per-sample models
    stay. Before this check the fit fell back, theta-MSE 0.0128 (the population
    GLM's) against 0.0053 with the per-sample models kept."""
    data = simulate.make_poisson(n_samples=2000, random_state=1000)
    est = PersonalizedRegression(family="poisson", random_state=1)
    est.fit(data.X, data.y, covariates=data.covariates)
    report = est.validation_scores_
    assert report["folds"] == 1
    split_best = min(report["scores"])
    assert split_best > report["population"] - 0.01, "the split alone is no clear win"
    check = report["confirmation"]
    assert check["folds"] == 5 and check["held_out"] == 2000
    assert check["score"] < check["population"]
    assert not is_fallback(report)
    truth = np.column_stack([data.coef, data.intercept])
    fitted = np.column_stack([est.coef_, est.intercept_])
    population = np.append(est.population_coef_, est.population_intercept_)
    error = np.mean((fitted - truth) ** 2)
    assert error < 0.6 * np.mean((population - truth) ** 2)
    from bayes_prsn.report import summary_text

    assert "per-sample models kept" in summary_text(est)


@pytest.mark.slow
def test_null_data_still_falls_back_after_the_check(tmp_path):
    """make_null, 1,000 samples (seed 44): the split and the five folds both
    favour the population GLM; every sample's model is the population's. The
    check's report is saved and loaded with the model, and the summary says it."""
    data = simulate.make_null(n_samples=1000, random_state=44)
    est = PersonalizedRegression(random_state=0)
    est.fit(data.X, data.y, covariates=data.covariates)
    report = est.validation_scores_
    assert report["folds"] == 1 and report["confirmation"]["folds"] == 5
    assert report["confirmation"]["held_out"] == 1000
    assert is_fallback(report)
    np.testing.assert_allclose(est.coef_, np.tile(est.population_coef_, (1000, 1)), rtol=1e-6)
    loaded = PersonalizedRegression.load(est.save(tmp_path / "null.bprsn"))
    assert loaded.validation_scores_ == report
    from bayes_prsn.report import summary_text

    assert "the population model stays" in summary_text(loaded)
    assert report["margin"] == 1.0
    assert "did not beat the population model by more than one standard error" in (
        summary_text(loaded)
    )
    # The strongly smoothed fit was scored on the same 1,000 held-out samples and lost.
    smoothed = report["smoothed_fallback"]
    assert smoothed["held_out"] == 1000 and not smoothed["kept"]
    assert smoothed["population"] == report["confirmation"]["population"]


@pytest.mark.slow
def test_weak_heterogeneity_keeps_the_strongly_smoothed_fit():
    """make_poisson, 1,000 samples (seed 62): on the split and the five folds the
    per-sample candidates do not beat the population GLM by more than one standard
    error (held-out deviance 1.291 against 1.312), but the fallback's strongly smoothed
    fit beats it on the same 1,000 held-out samples (1.157), and is kept.

    Measured: theta-MSE 0.12 times the GLM's. Falling back, as before the check, gave
    the GLM's (ratio 1)."""
    data = simulate.make_poisson(n_samples=1000, random_state=62)
    est = PersonalizedRegression(family="poisson", random_state=0)
    est.fit(data.X, data.y, covariates=data.covariates)
    report = est.validation_scores_
    assert report["confirmation"]["held_out"] == 1000
    smoothed = report["smoothed_fallback"]
    assert smoothed["kept"] and smoothed["held_out"] == 1000
    assert smoothed["score"] < smoothed["population"]
    assert not is_fallback(report)
    # The chosen candidate is the fallback's smoothing, the last one tried.
    assert report["chosen"] == len(report["candidates"]) - 1
    chosen = report["candidates"][report["chosen"]]
    assert chosen["likelihood_scale"] == FALLBACK_LIKELIHOOD_SCALE
    truth = np.column_stack([data.coef, data.intercept])
    fitted = np.column_stack([est.coef_, est.intercept_])
    population = np.append(est.population_coef_, est.population_intercept_)
    assert np.mean((fitted - truth) ** 2) < 0.5 * np.mean((population - truth) ** 2)
    from bayes_prsn.report import summary_text

    text = summary_text(est)
    assert "the population model wins" in text
    assert "they beat it by more than one standard error and are kept" in text


@pytest.mark.slow
def test_held_out_responses_do_not_reach_the_validation_fits(monkeypatch):
    """Shuffling the responses of one fold's held-out samples leaves that fold's
    held-out predictions unchanged to the bit: every validation fit starts from
    its own training part's population GLM. When they started from the GLM of
    every sample, held-out ones included, the predictions moved (by up to 4.0
    on make_null(150), seed 45)."""
    import bayes_prsn.smoothing as smoothing

    calls = []
    held_out_loss = smoothing.held_out_loss

    def spy(pointwise, data, eta, mask):
        calls.append((np.array(eta), np.array(mask)))
        return held_out_loss(pointwise, data, eta, mask)

    monkeypatch.setattr(smoothing, "held_out_loss", spy)
    data = simulate.make_null(n_samples=150, random_state=45)
    PersonalizedRegression(random_state=3).fit(data.X, data.y, covariates=data.covariates)
    eta, mask = calls[0]  # one fold's fit of the first candidate
    rows = np.flatnonzero(mask)
    shuffled = data.y.copy()
    shuffled[rows] = data.y[rows][np.random.default_rng(1).permutation(rows.size)]
    assert not np.array_equal(shuffled, data.y)
    calls.clear()
    PersonalizedRegression(random_state=3).fit(data.X, shuffled, covariates=data.covariates)
    # The same fold's fit of the first candidate: the folds' fits run side by side on
    # threads and end in any order, and the first candidate's all end before the next's.
    first = {}
    for again, same_mask in calls:
        first.setdefault(same_mask.tobytes(), again)
    assert mask.tobytes() in first, "the same held-out samples"
    np.testing.assert_array_equal(first[mask.tobytes()], eta)


@pytest.mark.parametrize("name", ["bernoulli", "poisson", "negative_binomial", "binomial"])
def test_psi_scale_is_chosen_where_the_family_has_no_noise_scale(name):
    """prior_scale="auto": count and binary families have every PRIOR_SCALE_GRID value at
    the full likelihood, flat first (the others are tried only where it loses to the
    population model, see test_narrower_psi_rescues_counts_that_fall_back); a given
    prior_scale is the one used;
    families with a noise scale or a shape grid keep psi flat; a fit that compares
    nothing (validation_fraction=0) uses the flat psi, as before "auto" existed."""
    import dataclasses

    from bayes_prsn.inputs import check_settings
    from bayes_prsn.problem import FLAT_PRIOR_SCALE
    from bayes_prsn.smoothing import PRIOR_SCALE_GRID, _candidates, _smoothness

    small, large = (
        SimpleNamespace(X=np.zeros((n, 1)))
        for n in (CROSS_VALIDATE_BELOW - 1, CROSS_VALIDATE_BELOW)
    )
    config = check_settings(PersonalizedRegression(family=name), name)
    first, rescue, given = _candidates(small, config)
    assert given is None
    # Flat first, alone; the narrower scales only as the second try.
    assert [c["prior_scale"] for c in first] == [FLAT_PRIOR_SCALE]
    assert [c["prior_scale"] for c in first + rescue] == list(PRIOR_SCALE_GRID)
    assert all(c["likelihood_scale"] == 1.0 for c in first + rescue)
    smoothness = [_smoothness(c) for c in first + rescue]
    assert smoothness == sorted(smoothness)  # flat is the roughest
    fixed, no_rescue, _ = _candidates(small, dataclasses.replace(config, prior_scale=5.0))
    assert all("prior_scale" not in c for c in fixed) and no_rescue == []
    # From CROSS_VALIDATE_BELOW samples on, psi stays flat.
    first, rescue, _ = _candidates(large, config)
    assert all("prior_scale" not in c for c in first) and rescue == []
    for other in ("gaussian", "student_t", "gamma"):
        other_config = check_settings(PersonalizedRegression(family=other), other)
        first, rescue, _ = _candidates(small, other_config)
        assert all("prior_scale" not in c for c in first) and rescue == []


def test_a_fit_that_compares_nothing_keeps_psi_flat():
    """validation_fraction=0: no held-out choice, psi at FLAT_PRIOR_SCALE as before "auto"."""
    from bayes_prsn.problem import FLAT_PRIOR_SCALE

    data = simulate.make_poisson(n_samples=60, random_state=3)
    est = PersonalizedRegression(family="poisson", validation_fraction=0.0, random_state=0)
    est.fit(data.X, data.y, covariates=data.covariates)
    assert est.validation_scores_ is None
    assert est.prior_scale_ == FLAT_PRIOR_SCALE


@pytest.mark.slow
def test_narrower_psi_rescues_counts_that_fall_back():
    """make_poisson, 200 samples (seed 13, one of the eight measured when the rule was
    made): the flat psi loses to the population model on 5 folds; psi 1 and 0.1 are
    tried, one wins, and its coefficients are more accurate than the population's
    (flat, the fit fell back: exactly 1x). Which of the two wins depends on the
    CPU's float32 rounding, since the one-standard-error rule picks between them
    near its boundary: on an AVX2 machine psi 1, 0.48x the population's error; on
    an AVX-512 one psi 0.1, 0.91x (and 0.92-1.00x on seeds 14-18 there). An
    earlier bound of 0.75x held on the first machine only."""
    from bayes_prsn.smoothing import PRIOR_SCALE_GRID

    data = simulate.make_poisson(n_samples=200, random_state=13)
    est = PersonalizedRegression(family="poisson", random_state=0)
    est.fit(data.X, data.y, covariates=data.covariates)
    report = est.validation_scores_
    tried = [c["prior_scale"] for c in report["candidates"][: len(report["scores"])]]
    # Flat with the three encoder scales, then the narrower ones and the encoder scales.
    assert tried[:3] == [PRIOR_SCALE_GRID[0]] * 3
    assert tried[3:5] == list(PRIOR_SCALE_GRID[1:])
    assert est.prior_scale_ in PRIOR_SCALE_GRID[1:]
    assert est.fit_state_.settings["prior_scale"] == est.prior_scale_
    error = np.mean((est.coef_ - data.coef) ** 2)
    population = np.mean((est.population_coef_ - data.coef) ** 2)
    assert error < population, (error, population)


def test_one_standard_error_prefers_the_simpler_candidate_unless_clearly_beaten():
    rng = np.random.default_rng(1)
    base = rng.exponential(1.0, 400)
    noise = 0.2 * rng.standard_normal(400)
    noise -= noise.mean()
    # The paired differences' SE is about 0.2 / sqrt(400) = 0.01.
    # The rougher candidate is better by 0.005 on average: within one SE.
    assert one_standard_error([base, base - 0.005 + noise]) == 0
    # ... and by 0.2: far beyond it.
    assert one_standard_error([base, base - 0.2 + noise]) == 1
    # The simplest of those within one SE of the best, not the best itself.
    n1, n2, n3 = (0.2 * rng.standard_normal(400) for _ in range(3))
    losses = [base + 0.5, base + 0.005 + n1 - n1.mean(), base + n2, base - 0.003 + n3 - n3.mean()]
    assert one_standard_error(losses) == 1


@pytest.fixture(scope="module")
def null_fit():
    data = simulate.make_null(n_samples=150, random_state=31)
    # Two threads whatever the machine's cores (compared with one thread below).
    est = PersonalizedRegression(random_state=0, n_jobs=2)
    est.fit(data.X, data.y, covariates=data.covariates)
    return est, data


def test_validation_fits_in_threads_give_the_same_fit(null_fit):
    """The validation fits run side by side on threads (``n_jobs``): the same
    programs on the same inputs, so the same choice and the same bits as one
    after another. This fit has every kind of batch: the first candidate's
    5 folds (compiled in the threads, under the tracing lock), the warm-started
    candidates, the encoder-smoothness candidates together (10 fits) and the
    smoothed fallback's check."""
    threaded, data = null_fit
    serial = PersonalizedRegression(random_state=0, n_jobs=1)
    serial.fit(data.X, data.y, covariates=data.covariates)
    assert serial.validation_scores_ == threaded.validation_scores_
    assert "smoothed_fallback" in serial.validation_scores_
    np.testing.assert_array_equal(serial.coef_, threaded.coef_)
    np.testing.assert_array_equal(serial.intercept_, threaded.intercept_)
    np.testing.assert_array_equal(serial.embedding_, threaded.embedding_)


def test_null_data_gets_the_population_model(null_fit):
    """150 samples with no heterogeneity: 5-fold choice, and every sample's
    model is exactly the population GLM (not a strongly smoothed copy)."""
    est, data = null_fit
    report = est.validation_scores_
    assert report["folds"] == 5 and report["held_out"] == 150
    assert report["chosen"] == len(report["scores"]), "the fallback is chosen"
    np.testing.assert_allclose(est.coef_, np.tile(est.population_coef_, (150, 1)), rtol=1e-6)
    np.testing.assert_allclose(est.intercept_, est.population_intercept_, rtol=1e-6)
    new = simulate.make_null(n_samples=20, random_state=32).covariates
    np.testing.assert_allclose(
        est.predict_coef(new), np.tile(est.population_coef_, (20, 1)), rtol=1e-6
    )
    from bayes_prsn.report import summary_text

    assert "every sample's model is the population's" in summary_text(est)


@pytest.mark.slow
def test_small_null_data_invents_no_heterogeneity():
    """Issue 15's small-data target on make_null (seeds benchmarks/ do not use):
    theta-MSE at most 1.1x the population model's, on average over 3 seeds at
    every size. Measured on this machine: 1.00 at 50, 150 and 500 samples."""
    for n_samples in (50, 150, 500):
        ratios = []
        for seed in (41, 42, 43):
            data = simulate.make_null(n_samples=n_samples, random_state=seed)
            est = PersonalizedRegression(random_state=seed)
            est.fit(data.X, data.y, covariates=data.covariates)
            mse = np.mean((est.coef_ - data.coef) ** 2)
            ratios.append(mse / np.mean((est.population_coef_ - data.coef) ** 2))
        assert np.mean(ratios) <= 1.1, (n_samples, ratios)


def test_analysis_of_identical_models_gives_one_cluster(null_fit):
    from bayes_prsn import analysis

    est, _ = null_fit
    clusters = analysis.cluster(est)
    assert clusters.n_clusters == 1
    embedding = analysis.embed(est)
    assert np.all(embedding.coordinates.to_numpy() == 0.0)


def test_one_standard_error_with_another_multiple():
    """``multiple`` scales the margin; 0 takes the best on the mean."""
    population = np.array([1.0, 1.2, 0.8, 1.1])
    # Better by 0.05 on average; the paired differences' standard error is 0.0816.
    personal = population - np.array([0.05, 0.25, -0.15, 0.05])
    assert one_standard_error([population, personal]) == 0  # within one standard error
    assert one_standard_error([population, personal], 0.5) == 1  # 0.05 > 0.0408
    assert one_standard_error([population, personal], 0.0) == 1
    worse = population + 0.01
    assert one_standard_error([population, worse], 0.0) == 0


@pytest.mark.slow
def test_a_narrower_psi_candidate_only_has_to_beat_the_population(monkeypatch):
    """Tokyo mortality's fifth outer fold (benchmarks/tokyo.py, seed 0): psi 0.1 beats
    the population GLM on the inner folds by less than one standard error; it is kept
    (RESCUED_MARGIN = 0). With one standard error the fit fell back, and its held-out
    deviance was 80.3 instead of 68.8."""
    from pathlib import Path

    import pandas as pd

    import bayes_prsn.smoothing as smoothing

    calls = []
    rule = smoothing.one_standard_error

    def spy(losses, multiple=1.0):
        calls.append(([np.array(loss) for loss in losses], multiple))
        return rule(losses, multiple)

    monkeypatch.setattr(smoothing, "one_standard_error", spy)
    frame = pd.read_csv(Path(__file__).parents[1] / "examples" / "data" / "tokyo_mortality.csv")
    test = np.random.default_rng(0).permutation(len(frame))[4::5]
    rows = frame.drop(index=frame.index[test])
    est = PersonalizedRegression(family="poisson", random_state=0)
    est.fit(
        rows[["OCC_TEC", "OWNH", "POP65", "UNEMP"]],
        rows["db2564"],
        rows[["X_CENTROID", "Y_CENTROID"]],
        exposure=rows["eb2564"],
    )
    assert not is_fallback(est.validation_scores_)
    assert est.prior_scale_ in smoothing.PRIOR_SCALE_GRID[1:]
    (final, multiple) = calls[-1]
    assert multiple == smoothing.RESCUED_MARGIN == 0.0
    assert est.validation_scores_["margin"] == 0.0
    assert rule(final, 1.0) == 0  # one standard error would have chosen the population
