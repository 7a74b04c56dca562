"""Saved models: exact round trip, posterior included, clear errors on damaged or future files."""

import json
import zipfile

import numpy as np
import pytest

import bayes_prsn
from bayes_prsn import ModelFileError, PersonalizedClassifier, PersonalizedRegression
from bayes_prsn.persistence import FORMAT_VERSION


def _same_predictions(a, b, X, covariates):
    np.testing.assert_array_equal(a.predict(X, covariates), b.predict(X, covariates))
    np.testing.assert_array_equal(a.predict_coef(covariates), b.predict_coef(covariates))
    np.testing.assert_array_equal(a.predict_intercept(covariates), b.predict_intercept(covariates))


def test_round_trip_is_exact(fitted_clustered, clustered, tmp_path):
    path = fitted_clustered.save(tmp_path / "model.bprsn")
    assert path.exists() and not list(tmp_path.glob("*.part"))
    loaded = PersonalizedRegression.load(path)
    assert loaded.get_params() == fitted_clustered.get_params()
    for name in ("coef_", "intercept_", "embedding_", "covariate_weights_", "loss_history_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted_clustered, name))
    assert loaded.covariate_names_used_ == fitted_clustered.covariate_names_used_
    assert loaded.noise_scale_ == fitted_clustered.noise_scale_
    new = clustered.covariates.iloc[:40].astype({"group": object})
    new.loc[new.index[:3], "group"] = "never seen"
    with pytest.warns(UserWarning, match="never seen in fit"):
        _same_predictions(fitted_clustered, loaded, clustered.X[:40], new)
    # The archive holds no pickle: only JSON, .npy arrays read with allow_pickle=False.
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        metadata = json.loads(archive.read("metadata.json"))
    assert all(n == "metadata.json" or n.endswith(".npy") for n in names)
    assert metadata["bayes_prsn_version"] == bayes_prsn.__version__
    assert metadata["format_version"] == FORMAT_VERSION


def test_round_trip_with_posterior_and_labels(framed, tmp_path):
    data, X, covariates = framed
    est = PersonalizedRegression(random_state=0).fit(X, data.y, covariates=covariates)
    est.sample_posterior("laplace", num_samples=200, random_state=0)
    loaded = bayes_prsn.load(est.save(tmp_path / "with_posterior.bprsn"))
    assert loaded.fit_state_.sample_index == est.fit_state_.sample_index  # the index labels
    assert loaded.feature_names_ == ["a", "b", "c"]
    for a, b in zip(est.coef_interval(), loaded.coef_interval(), strict=True):
        np.testing.assert_array_equal(a, b)
    first = est.predict(X, covariates, return_interval=True)
    second = loaded.predict(X, covariates, return_interval=True)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.posterior_method_ == "laplace"
    summary = loaded.summary(var_names="intercept")
    np.testing.assert_allclose(summary["mean"], est.summary(var_names="intercept")["mean"])
    # The learned scales and the shared parts' draws come back too.
    assert loaded.posterior_state_.scales == est.posterior_state_.scales
    for site, value in est.posterior_state_.shared_draws.items():
        np.testing.assert_array_equal(loaded.posterior_state_.shared_draws[site], value)


def test_classifier_round_trip(fitted_classifier, logistic, tmp_path):
    loaded = PersonalizedClassifier.load(fitted_classifier.save(tmp_path / "clf.bprsn"))
    np.testing.assert_array_equal(loaded.classes_, fitted_classifier.classes_)
    np.testing.assert_array_equal(
        loaded.predict_proba(logistic.X, logistic.covariates),
        fitted_classifier.predict_proba(logistic.X, logistic.covariates),
    )
    with pytest.raises(ModelFileError, match="holds a PersonalizedClassifier, not a Personal"):
        PersonalizedRegression.load(tmp_path / "clf.bprsn")


@pytest.fixture(scope="module")
def saved(fitted_toy, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "toy.bprsn"
    fitted_toy.save(path)
    return path


def _rewrite(source, target, edit):
    """Copy a saved model, changing metadata.json with ``edit`` (checksums left as they were)."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members["metadata.json"])
    edit(metadata, members)
    members["metadata.json"] = json.dumps(metadata).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return target


def test_damaged_files_give_one_line_errors(saved, tmp_path):
    raw = saved.read_bytes()
    bad = tmp_path / "bad.bprsn"
    cases = {
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "not a zip": b"hello, I am a CSV file\n1,2,3\n",
    }
    for name, content in cases.items():
        bad.write_bytes(content)
        with pytest.raises(ModelFileError, match="damaged or truncated") as info:
            PersonalizedRegression.load(bad)
        assert "\n" not in str(info.value), name
    with pytest.raises(ModelFileError, match="no such file"):
        PersonalizedRegression.load(tmp_path / "missing.bprsn")


def test_tampered_and_future_files(saved, tmp_path):
    def future(metadata, members):
        metadata["format_version"] = FORMAT_VERSION + 1
        metadata["bayes_prsn_version"] = "9.0"

    with pytest.raises(ModelFileError, match=r"written by bayes_prsn 9.0 .* upgrade bayes_prsn"):
        bayes_prsn.load(_rewrite(saved, tmp_path / "future.bprsn", future))

    def swap_array(metadata, members):
        members["arrays/coef_.npy"] = members["arrays/intercept_.npy"]

    with pytest.raises(ModelFileError, match="arrays/coef_.npy fails its checksum"):
        bayes_prsn.load(_rewrite(saved, tmp_path / "swapped.bprsn", swap_array))

    def wrong_shape(metadata, members):
        # A consistent forgery (checksum updated) is still caught by the shape checks.
        import hashlib

        members["arrays/coef_.npy"] = members["arrays/intercept_.npy"]
        digest = hashlib.sha256(members["arrays/coef_.npy"]).hexdigest()
        metadata["checksums"]["arrays/coef_.npy"] = digest

    with pytest.raises(ModelFileError, match=r"array coef_ has shape \(240,\), expected"):
        bayes_prsn.load(_rewrite(saved, tmp_path / "forged.bprsn", wrong_shape))

    def drop_value(metadata, members):
        del metadata["values"]["n_predictors_"]

    with pytest.raises(ModelFileError, match="incomplete or inconsistent"):
        bayes_prsn.load(_rewrite(saved, tmp_path / "incomplete.bprsn", drop_value))

    def other_format(metadata, members):
        metadata["format"] = "something-else"

    with pytest.raises(ModelFileError, match="not a saved bayes_prsn model"):
        bayes_prsn.load(_rewrite(saved, tmp_path / "other.bprsn", other_format))


def test_bit_flips_never_crash(saved, tmp_path):
    """Flip single bits across the file: every load either works or raises ModelFileError."""
    raw = bytearray(saved.read_bytes())
    rng = np.random.default_rng(0)
    bad = tmp_path / "flipped.bprsn"
    outcomes = {"loaded": 0, "refused": 0}
    for position in rng.choice(len(raw), size=40, replace=False):
        flipped = bytearray(raw)
        flipped[position] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        try:
            PersonalizedRegression.load(bad)
            outcomes["loaded"] += 1
        except ModelFileError as error:
            assert "\n" not in str(error)
            outcomes["refused"] += 1
    # Compressed data and headers are covered by CRCs and checksums: most flips are caught.
    assert outcomes["refused"] >= 30, outcomes


def test_save_requires_fit_and_plain_params(tmp_path, fitted_toy):
    with pytest.raises(bayes_prsn.NotFittedError):
        PersonalizedRegression().save(tmp_path / "x.bprsn")
    import copy

    odd = copy.copy(fitted_toy)
    odd.random_state = np.random.RandomState(0)
    with pytest.raises(ValueError, match="cannot save parameter random_state"):
        odd.save(tmp_path / "odd.bprsn")
    assert not list(tmp_path.iterdir())
