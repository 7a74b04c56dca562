"""Every plot renders to a PNG file (Agg backend), ours and ArviZ's on ``idata_``."""

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bayes_prsn import arviz_compat, plots  # noqa: E402


def _save(fig, path):
    fig.savefig(path)
    plt.close(fig)
    assert path.stat().st_size > 1000


def test_plot_coefficients(short_nuts, tmp_path):
    estimator, _ = short_nuts
    fig, axes = plots.plot_coefficients(estimator, samples=["s0", "s1", "s2"], features=["a", 2])
    assert len(axes) == 2
    _save(fig, tmp_path / "forest.png")


def test_plot_trace(short_nuts, tmp_path):
    estimator, _ = short_nuts
    fig, axes = plots.plot_trace(estimator, samples=["s0", "s5"], features=["b"])
    assert axes.shape == (2, 2)
    _save(fig, tmp_path / "trace.png")


def test_plot_coefficient_vs_covariate(short_nuts, framed, tmp_path):
    estimator, _ = short_nuts
    data, _, covariates = framed
    name = covariates.columns[0]
    fig, ax = plots.plot_coefficient_vs_covariate(estimator, "a", name, truth=data.coef[:, 0])
    _save(fig, tmp_path / "band.png")
    fig, ax = plots.plot_coefficient_vs_covariate(estimator, 1, covariates[name].to_numpy() > 0)
    _save(fig, tmp_path / "band_categorical.png")


def test_plot_ppc(short_nuts, tmp_path):
    fig, ax = plots.plot_ppc(short_nuts[0], num_draws=10)
    _save(fig, tmp_path / "ppc.png")


def test_plots_without_posterior_and_bad_names(fitted_toy, tmp_path):
    fig, _ = plots.plot_coefficients(fitted_toy)
    _save(fig, tmp_path / "map_forest.png")
    with pytest.raises(ValueError, match="unknown feature"):
        plots.plot_coefficients(fitted_toy, features=["nope"])
    with pytest.raises(ValueError, match="unknown sample"):
        plots.plot_coefficients(fitted_toy, samples=["nobody"])
    with pytest.raises(ValueError, match="unknown covariate"):
        plots.plot_coefficient_vs_covariate(fitted_toy, 0, "nope")
    with pytest.raises(ValueError, match="sample_posterior"):
        plots.plot_trace(fitted_toy)


def test_arviz_plots_work_on_idata(short_nuts, tmp_path):
    az = arviz_compat.arviz()
    idata = short_nuts[0].idata_
    with warnings.catch_warnings():
        # Few draws: ArviZ may warn about its own estimates; the plots must render.
        warnings.simplefilter("ignore", UserWarning)
        # ArviZ 0.23 calls a matplotlib API that matplotlib 3.11 deprecates.
        warnings.simplefilter("ignore", DeprecationWarning)
        if arviz_compat.is_arviz_1():
            figures = [
                az.plot_trace_dist(idata, var_names=["noise_scale"]),
                az.plot_forest(idata, var_names=["intercept"], coords={"obs_id": ["s0", "s1"]}),
                az.plot_ppc_dist(idata, num_samples=10),
                az.plot_rank(idata, var_names=["noise_scale"]),
            ]
            for number, collection in enumerate(figures):
                collection.savefig(tmp_path / f"arviz{number}.png")
        else:
            az.plot_trace(idata, var_names=["noise_scale"])
            az.plot_forest(idata, var_names=["intercept"], coords={"obs_id": ["s0", "s1"]})
            az.plot_ppc(idata, num_pp_samples=10)
            az.plot_rank(idata, var_names=["noise_scale"])
            for number in plt.get_fignums():
                plt.figure(number).savefig(tmp_path / f"arviz{number}.png")
    plt.close("all")
    assert len(list(tmp_path.glob("arviz*.png"))) >= 4
