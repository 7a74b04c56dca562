"""bayes_prsn.analysis on simulated data with known clusters and known informative covariates."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from bayes_prsn import PersonalizedRegression, analysis, simulate

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def low_rank():
    """Smooth heterogeneity driven by u0..u2, plus two pure-noise covariates."""
    data = simulate.make_low_rank(n_samples=300, n_noise_covariates=2, random_state=0)
    est = PersonalizedRegression(random_state=0).fit(data.X, data.y, covariates=data.covariates)
    return data, est


def test_model_matrix_and_embedding(fitted_clustered):
    matrix = analysis.model_matrix(fitted_clustered)
    features = [f"x{j}" for j in range(5)]
    assert list(matrix.columns) == features + ["intercept"]
    np.testing.assert_array_equal(matrix[features].to_numpy(), fitted_clustered.coef_)
    standard = analysis.model_matrix(fitted_clustered, standardize=True)
    np.testing.assert_allclose(standard.mean(), 0, atol=1e-12)
    embedding = analysis.embed(fitted_clustered, 2)
    assert embedding.coordinates.shape == (200, 2)
    assert list(embedding.coordinates.columns) == ["PC1", "PC2"]
    assert 0.5 < embedding.explained_variance_ratio.sum() <= 1.0
    with pytest.raises(ValueError, match="n_components must be an integer in 1..6"):
        analysis.embed(fitted_clustered, 9)
    with pytest.raises(ValueError, match="method must be 'pca' or 'umap'"):
        analysis.embed(fitted_clustered, method="tsne")


def test_clusters_recover_the_true_groups(fitted_clustered, clustered):
    result = analysis.cluster(fitted_clustered)
    assert result.n_clusters == clustered.info["n_clusters"] == 4
    truth = clustered.covariates["group"].to_numpy()
    assert adjusted_rand_score(truth, result.labels) > 0.95
    # The group covariate separates the clusters; age (pure noise here) does not.
    assert result.separation.index[0] == "group"
    assert result.separation.loc["group", "association"] > 0.9
    assert result.separation.loc["age", "association"] < 0.1
    # One row per (cluster, coefficient): 4 clusters x (5 features + intercept).
    assert result.profiles.shape == (4 * 6, 5)
    assert result.profiles["lower"].isna().all()  # no posterior yet
    fixed = analysis.cluster(fitted_clustered, n_clusters=2)
    assert fixed.n_clusters == 2 and set(fixed.labels) == {0, 1}


def test_no_structure_gives_one_cluster():
    data = simulate.make_null(n_samples=200, random_state=0)
    est = PersonalizedRegression(random_state=0).fit(data.X, data.y, covariates=data.covariates)
    assert analysis.cluster(est).n_clusters == 1


def test_noise_covariates_rank_below_informative(low_rank, fitted_clustered):
    data, est = low_rank
    table = analysis.covariate_importance(est)
    informative, noise = data.info["informative"], ["noise0", "noise1"]
    assert set(table.index) == set(informative + noise)
    # Measured (seed 0): explained 0.68/0.17/0.05 for u0/u2/u1 against <=0.01 for noise.
    assert table.loc[informative, "explained"].min() > table.loc[noise, "explained"].max()
    assert table.index[-1] in noise and table.index[-2] in noise
    assert table.loc[noise, "weight"].max() < table.loc["u0", "weight"]
    clustered = analysis.covariate_importance(fitted_clustered)
    assert clustered.index[0] == "group" and clustered.loc["age", "explained"] < 0.05


def test_zoom_table(fitted_clustered):
    clusters = analysis.cluster(fitted_clustered)
    table = analysis.zoom(fitted_clustered, "x0", clusters=clusters, samples=[0, 5])
    assert list(table["level"].unique()) == ["population", "cluster", "group", "sample"]
    assert table.iloc[0]["mean"] == pytest.approx(fitted_clustered.population_coef_[0])
    assert table.iloc[1]["mean"] == pytest.approx(fitted_clustered.coef_[:, 0].mean())
    samples = table[table["level"] == "sample"]
    np.testing.assert_allclose(samples["mean"], fitted_clustered.coef_[[0, 5], 0])
    groups = table[table["level"] == "group"]
    assert {"group = g0", "group = g1", "group = g2", "group = g3"} <= set(groups["name"])
    assert (groups["name"].str.startswith("age in")).sum() == 4
    # Cluster rows and group rows describe the same partition here.
    cluster_sizes = sorted(table[table["level"] == "cluster"]["n_samples"])
    group_sizes = sorted(groups[groups["name"].str.startswith("group =")]["n_samples"])
    assert cluster_sizes == group_sizes
    intercept = analysis.zoom(fitted_clustered, "intercept", clusters=clusters, by="group")
    assert intercept.iloc[0]["mean"] == pytest.approx(fitted_clustered.population_intercept_)
    with pytest.raises(ValueError, match="unknown feature 'dose'"):
        analysis.zoom(fitted_clustered, "dose")
    with pytest.raises(ValueError, match=r"by \['tissue'\] are not covariates"):
        analysis.zoom(fitted_clustered, 0, by="tissue")


def test_intervals_with_a_posterior(short_nuts):
    est, _ = short_nuts
    importance = analysis.covariate_importance(est)
    # The posterior holds the metric's weights at the MAP: no interval to show.
    assert importance[["lower", "upper"]].isna().all().all()
    weights = dict(zip(est.covariate_names_used_, est.covariate_weights_, strict=True))
    np.testing.assert_allclose(importance["weight"], [weights[n] for n in importance.index])
    table = analysis.zoom(est, "a", samples=["s0"])
    rows = table.iloc[1:]
    assert rows[["lower", "upper"]].notna().all().all()
    assert (rows["lower"] <= rows["upper"]).all()
    profiles = analysis.cluster(est).profiles
    assert profiles[["lower", "upper"]].notna().all().all()


def test_plots_return_matplotlib_objects(fitted_clustered, tmp_path):
    import matplotlib.pyplot as plt

    clusters = analysis.cluster(fitted_clustered)
    figures = [
        analysis.plot_embedding(fitted_clustered, color_by="group")[0],
        analysis.plot_embedding(fitted_clustered, color_by="age")[0],
        analysis.plot_clusters(fitted_clustered, clusters)[0],
        analysis.plot_zoom(analysis.zoom(fitted_clustered, 0, clusters=clusters))[0],
        analysis.plot_covariate_importance(analysis.covariate_importance(fitted_clustered))[0],
    ]
    for number, figure in enumerate(figures):
        path = tmp_path / f"figure{number}.png"
        figure.savefig(path)
        assert path.stat().st_size > 1000
        plt.close(figure)
    with pytest.raises(ValueError, match="unknown covariate 'dose'"):
        analysis.plot_embedding(fitted_clustered, color_by="dose")
    labels = pd.Series(clusters.labels.to_numpy())
    fig, ax = analysis.plot_embedding(fitted_clustered, color_by=labels, label="cluster")
    assert ax.get_legend().get_title().get_text() == "cluster"
    plt.close(fig)
