"""Input checks, covariate coding, pair distances and the neighbour graph."""

import numpy as np
import pandas as pd
import pytest

from bayes_prsn.preprocessing import (
    CovariateEncoder,
    NeighbourSearch,
    Standardizer,
    build_neighbour_pairs,
    check_array,
    check_response,
    neighbour_space,
    pair_distances,
)


def test_check_array_errors():
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        check_array(np.array([[1.0, np.nan]]), "X")
    with pytest.raises(ValueError, match="X contains 1 NaN or infinite"):
        check_array(np.array([[1.0, np.inf]]), "X")
    with pytest.raises(ValueError, match="X has 2 rows but y has 3"):
        check_array(np.ones((2, 2)), "X", n_samples=3)
    with pytest.raises(ValueError, match="X must be 2-D"):
        check_array(np.ones(3), "X")
    with pytest.raises(TypeError, match=r"X must be numeric; column\(s\) \['b'\]"):
        check_array(pd.DataFrame({"a": [1.0], "b": ["x"]}), "X")
    values, names = check_array(pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]}), "X")
    assert names == ["a", "b"] and values.dtype == float


def test_check_response_errors():
    with pytest.raises(ValueError, match="y contains NaN"):
        check_response([1.0, np.nan], "gaussian")
    with pytest.raises(ValueError, match="only 0 and 1"):
        check_response([0, 2], "bernoulli")
    with pytest.raises(ValueError, match="single class"):
        check_response([1, 1, 1], "bernoulli")
    with pytest.raises(ValueError, match="non-negative integer counts"):
        check_response([1, -1], "poisson")
    with pytest.raises(ValueError, match="non-negative integer counts"):
        check_response([1.5, 2], "poisson")


def test_standardizer_constant_column():
    scaler = Standardizer.fit(np.column_stack([np.arange(5.0), np.full(5, 3.0)]))
    assert np.all(np.isfinite(scaler.transform(np.ones((2, 2)))))
    assert scaler.scale[1] == 1.0


def test_encoder_types_and_constant_column():
    frame = pd.DataFrame(
        {
            "age": [30.0, 40.0, 50.0, 60.0, np.nan],
            "tissue": ["a", "b", "a", "c", "b"],
            "flag": [True, False, True, True, False],
            "const": [1.0] * 5,
        }
    )
    with pytest.warns(UserWarning, match=r"\['const'\] are constant"):
        encoder = CovariateEncoder().fit(frame, n_samples=5)
    assert encoder.numeric_names_ == ["age"]
    assert encoder.categorical_names_ == ["tissue", "flag"]
    encoded = encoder.transform(frame)
    assert np.isnan(encoded.numeric[4, 0])
    # A level never seen in fit is named in a warning and coded as missing.
    with pytest.warns(UserWarning, match=r"never seen in fit: 'tissue': \['z'\] in 1 row"):
        new = encoder.transform(frame.assign(tissue=["z", "a", None, "c", "b"]))
    assert new.categorical[0, 0] == -1  # unseen level
    assert new.categorical[2, 0] == -1  # missing


def test_encoder_errors():
    with pytest.raises(ValueError, match="covariates is required"):
        CovariateEncoder().fit(None, n_samples=3)
    with pytest.raises(ValueError, match="zero columns"):
        CovariateEncoder().fit(np.empty((3, 0)), n_samples=3)
    with pytest.raises(ValueError, match="covariates has 2 rows but X has 3"):
        CovariateEncoder().fit(np.ones((2, 1)), n_samples=3)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no usable column"):
        CovariateEncoder().fit(np.ones((3, 1)), n_samples=3)
    encoder = CovariateEncoder().fit(np.arange(6.0).reshape(3, 2), n_samples=3)
    with pytest.raises(ValueError, match="covariates has 1 columns but 2 were used"):
        encoder.transform(np.ones((3, 1)))
    named = CovariateEncoder().fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), n_samples=3)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['a'\]"):
        named.transform(pd.DataFrame({"b": [1.0]}))


def test_pair_distances_missing_rescaled():
    frame = pd.DataFrame({"x": [0.0, 1.0, np.nan, 3.0], "g": ["a", "b", "a", "a"]})
    encoder = CovariateEncoder().fit(frame, n_samples=4)
    encoded = encoder.transform(frame)
    d = pair_distances(encoded.take([0, 0, 1]), encoded.take([1, 2, 3]))
    scale = encoder.scales_[0]
    np.testing.assert_allclose(d[0], [1.0 / scale, 1.0])
    # x missing in sample 2: only g is observed, so its distance (0) counts double.
    np.testing.assert_allclose(d[1], [0.0, 0.0])
    np.testing.assert_allclose(d[2], [2.0 / scale, 1.0])
    frame2 = frame.assign(g=["a", "b", "b", "a"])
    d2 = pair_distances(*(encoder.transform(frame2).take(i) for i in ([0], [2])))
    np.testing.assert_allclose(d2[0], [0.0, 2.0])


def test_neighbour_pairs_sparse_and_local(rng):
    u = np.sort(rng.uniform(size=200))[:, None]
    encoded = CovariateEncoder().fit(u, n_samples=200).transform(u)
    pairs, is_random = build_neighbour_pairs(encoded, np.ones(1), 5)
    assert pairs.shape[0] <= 200 * 5 and np.all(pairs[:, 0] < pairs[:, 1])
    assert not is_random.any()
    assert np.max(np.abs(pairs[:, 0] - pairs[:, 1])) <= 10  # sorted: neighbours are close
    more, is_random = build_neighbour_pairs(encoded, np.ones(1), 5, n_random=3, rng=0)
    assert pairs.shape[0] < more.shape[0] <= 200 * 8
    assert len(np.unique(more, axis=0)) == more.shape[0]
    np.testing.assert_array_equal(more[~is_random], pairs)


def test_neighbour_search_is_exact_l1_with_categories_and_missing(rng):
    # Numeric, categorical and missing values: the tree's neighbours must be
    # the brute-force nearest ones under the L1 distance of neighbour_space.
    n = 300
    frame = pd.DataFrame(
        {
            "a": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n)),
            "b": rng.uniform(size=n),
            "g": rng.choice(["x", "y", "z"], size=n),
        }
    )
    encoded = CovariateEncoder().fit(frame, n_samples=n).transform(frame)
    weights = np.array([2.0, 1.0, 0.5])
    space = neighbour_space(encoded, weights)
    index = NeighbourSearch(space).query(space[:40], 7)
    brute = np.abs(space[:40, None, :] - space[None, :, :]).sum(axis=2)
    found = np.take_along_axis(brute, index, axis=1)
    np.testing.assert_allclose(found, np.sort(brute, axis=1)[:, :7], atol=1e-12)
    assert np.all(index[:, 0] == np.arange(40))  # each point is its own nearest
    # Asking for more neighbours than samples returns every sample.
    assert NeighbourSearch(space[:5]).query(space[:2], 9).shape == (2, 5)


def test_neighbour_pairs_match_unique_and_isin(rng):
    # The sort-based dedup and membership agree with np.unique / np.isin.
    from bayes_prsn.preprocessing import _sorted_contains, _sorted_unique

    keys = rng.integers(0, 50, size=400)
    np.testing.assert_array_equal(_sorted_unique(keys), np.unique(keys))
    probe = rng.integers(-5, 60, size=100)
    np.testing.assert_array_equal(_sorted_contains(np.unique(keys), probe), np.isin(probe, keys))
    assert _sorted_unique(np.array([], dtype=np.int64)).size == 0
    assert not _sorted_contains(np.array([], dtype=np.int64), probe).any()
