"""Plots of the per-sample models; each returns the matplotlib figure and axes.

With a posterior (after ``sample_posterior``) points are posterior means and
bars credible intervals; without one, points are the MAP estimates. ArviZ's
own ``az.plot_*`` functions work directly on ``estimator.idata_`` too.
matplotlib is imported when a plot is drawn (``pip install
bayes_prsn[plots]``).
"""

from __future__ import annotations

import numpy as np

from . import arviz_compat
from .figures import figure_for, pyplot
from .inference_data import interval, pooled_draws
from .state import fitted_state, has_posterior, posterior_state

__all__ = [
    "plot_coefficients",
    "plot_trace",
    "plot_coefficient_vs_covariate",
    "plot_ppc",
]


def _feature_position(estimator, feature) -> int:
    labels = fitted_state(estimator).feature_labels
    if isinstance(feature, int | np.integer) and not isinstance(feature, bool):
        if not 0 <= feature < len(labels):
            raise ValueError(f"feature index {feature} is out of range (0..{len(labels) - 1}).")
        return int(feature)
    if feature in labels:
        return labels.index(feature)
    raise ValueError(f"unknown feature {feature!r}; choose from {labels} or an integer index.")


def _sample_positions(estimator, samples) -> list[int]:
    labels = list(fitted_state(estimator).sample_index)
    if samples is None:
        return list(range(min(8, len(labels))))
    if np.isscalar(samples):
        samples = [samples]
    positions = []
    for sample in samples:
        if sample not in labels:
            raise ValueError(
                f"unknown sample {sample!r}; use labels of the training data's index "
                f"(for example {labels[:3]})."
            )
        positions.append(labels.index(sample))
    return positions


def _coefficient_draws(estimator):
    """(draws, n_samples, n_features) coefficient draws, or None without a posterior."""
    if not has_posterior(estimator):
        return None
    return pooled_draws(estimator.idata_, "coef")


def _point_and_interval(estimator, prob, kind):
    draws = _coefficient_draws(estimator)
    if draws is None:
        return estimator.coef_, None, None
    lower, upper = interval(draws, prob, kind)
    return draws.mean(axis=0), lower, upper


def plot_coefficients(estimator, samples=None, features=None, *, prob=0.9, kind="hdi"):
    """Forest plot: chosen samples' coefficients with credible intervals.

    One panel per feature, one row per sample; the dashed line is the
    population GLM's coefficient.

    Parameters
    ----------
    estimator : fitted PersonalizedRegression or PersonalizedClassifier
    samples : label or list of labels, optional
        Samples (training index labels) to show; default the first eight.
    features : list of names or indices, optional
        Default all features.
    prob, kind
        Interval probability and kind (``"hdi"`` or ``"eti"``).

    Returns
    -------
    fig, axes
    """
    plt = pyplot()
    fitted_state(estimator)
    rows = _sample_positions(estimator, samples)
    columns = (
        list(range(estimator.n_predictors_))
        if features is None
        else [_feature_position(estimator, f) for f in features]
    )
    point, lower, upper = _point_and_interval(estimator, prob, kind)
    labels = fitted_state(estimator).feature_labels
    fig, axes = plt.subplots(
        1,
        len(columns),
        figsize=(2.6 * len(columns) + 1, 0.35 * len(rows) + 1.5),
        sharey=True,
        squeeze=False,
    )
    axes = axes[0]
    positions = np.arange(len(rows))[::-1]
    for ax, column in zip(axes, columns, strict=True):
        values = point[rows, column]
        if lower is not None:
            ax.hlines(positions, lower[rows, column], upper[rows, column], color="C0", lw=2)
        ax.plot(values, positions, "o", color="C0", ms=4)
        ax.axvline(
            estimator.population_coef_[column], color="0.4", ls="--", lw=1, label="population"
        )
        ax.set_title(str(labels[column]))
        ax.set_xlabel("coefficient")
    axes[0].set_yticks(positions)
    axes[0].set_yticklabels([str(fitted_state(estimator).sample_index[r]) for r in rows])
    axes[0].set_ylabel("sample")
    axes[-1].legend(fontsize=7, loc="best")
    what = (
        f"posterior mean, {int(round(prob * 100))}% {kind.upper()}" if lower is not None else "MAP"
    )
    n_samples = len(fitted_state(estimator).sample_index)
    which = f"first {len(rows)} of {n_samples} samples" if samples is None else "chosen samples"
    fig.suptitle(f"per-sample coefficients ({what}; {which})", fontsize=10)
    fig.tight_layout()
    return fig, axes


def plot_trace(estimator, samples=None, features=None, *, max_panels=6):
    """Trace and rank plots of chosen coefficients (needs a posterior).

    Each row is one coefficient: on the left its draws per chain, on the
    right the histogram of its ranks per chain (flat when chains agree).

    Returns
    -------
    fig, axes : axes has shape (n_coefficients, 2)
    """
    plt = pyplot()
    posterior_state(estimator)
    rows = _sample_positions(
        estimator, samples if samples is not None else [fitted_state(estimator).sample_index[0]]
    )
    columns = (
        list(range(estimator.n_predictors_))
        if features is None
        else [_feature_position(estimator, f) for f in features]
    )
    pairs = [(r, c) for r in rows for c in columns][:max_panels]
    coef = arviz_compat.group(estimator.idata_, "posterior")["coef"].values
    n_chains, n_draws = coef.shape[:2]
    labels = fitted_state(estimator).feature_labels
    fig, axes = plt.subplots(len(pairs), 2, figsize=(9, 1.9 * len(pairs) + 0.5), squeeze=False)
    bins = np.linspace(0, n_chains * n_draws, 21)
    for (row, column), (trace_ax, rank_ax) in zip(pairs, axes, strict=True):
        draws = coef[:, :, row, column]
        ranks = np.argsort(np.argsort(draws.ravel())).reshape(draws.shape)
        for chain in range(n_chains):
            trace_ax.plot(
                draws[chain], lw=0.5, alpha=0.8, color=f"C{chain}", label=f"chain {chain}"
            )
            rank_ax.hist(ranks[chain], bins=bins, histtype="step", color=f"C{chain}")
        name = f"coef[{fitted_state(estimator).sample_index[row]}, {labels[column]}]"
        trace_ax.set_ylabel(name, fontsize=8)
        rank_ax.set_yticks([])
    axes[-1, 0].set_xlabel("draw")
    axes[-1, 1].set_xlabel("rank (all chains)")
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=min(n_chains, 4))
    fig.suptitle(
        "left: draws per chain; right: histogram of each chain's ranks (flat when chains agree)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig, axes


def plot_coefficient_vs_covariate(
    estimator, feature, covariate, *, prob=0.9, kind="hdi", truth=None, ax=None
):
    """One coefficient across samples against a covariate, with credible intervals.

    Parameters
    ----------
    estimator : fitted estimator
    feature : name or index
        The coefficient to show.
    covariate : name or array-like of shape (n_samples,)
        A covariate column used in ``fit`` (by name) or any values per
        training sample. Numeric values go on the x-axis; categorical ones are
        shown per level.
    truth : array-like of shape (n_samples,), optional
        Known coefficients (simulated data) to overlay.

    Returns
    -------
    fig, ax
    """
    import pandas as pd

    fitted_state(estimator)
    column = _feature_position(estimator, feature)
    if isinstance(covariate, str):
        frame = fitted_state(estimator).covariates_frame
        if covariate not in frame.columns:
            raise ValueError(
                f"unknown covariate {covariate!r}; choose from {list(frame.columns)} or pass "
                "one value per training sample."
            )
        values, name = frame[covariate], covariate
    else:
        values, name = pd.Series(np.asarray(covariate)), "covariate"
        if len(values) != len(fitted_state(estimator).sample_index):
            raise ValueError(
                f"covariate has {len(values)} values; pass one per training sample "
                f"({len(fitted_state(estimator).sample_index)})."
            )
    point, lower, upper = _point_and_interval(estimator, prob, kind)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        x = values.to_numpy(dtype=float)
        ticks = None
    else:
        levels = pd.Categorical(values.astype("string").fillna("<missing>"))
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(values))
        x = levels.codes + jitter
        ticks = list(levels.categories)
    fig, ax = figure_for(ax, (6, 4))
    if lower is not None:
        ax.vlines(
            x,
            lower[:, column],
            upper[:, column],
            color="C0",
            alpha=0.25,
            lw=1,
            label=f"{int(round(prob * 100))}% {kind.upper()}",
        )
    ax.plot(
        x,
        point[:, column],
        ".",
        color="C0",
        ms=3,
        label="posterior mean" if lower is not None else "MAP",
    )
    if truth is not None:
        ax.plot(x, np.asarray(truth), ".", color="C3", ms=2, label="truth")
    ax.axhline(estimator.population_coef_[column], color="0.4", ls="--", lw=1, label="population")
    if ticks is not None:
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(ticks)
    ax.set_xlabel(name)
    ax.set_ylabel(f"coefficient of {fitted_state(estimator).feature_labels[column]}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, ax


def plot_ppc(estimator, *, num_draws=50, seed=0, ax=None):
    """Posterior predictive check: the observed response against replicated data sets.

    Gaussian and Poisson: histograms (as lines) of ``num_draws`` replicated
    responses and of the observed one. Bernoulli: the share of ones in the
    replicates against the observed share.

    Returns
    -------
    fig, ax
    """
    posterior_state(estimator)
    replicated = pooled_draws(estimator.idata_, "y", "posterior_predictive")
    observed = np.asarray(arviz_compat.group(estimator.idata_, "observed_data")["y"].values)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(replicated.shape[0], min(num_draws, replicated.shape[0]), replace=False)
    fig, ax = figure_for(ax, (6, 4))
    if estimator.family_ == "bernoulli":
        shares = replicated.mean(axis=1)
        ax.hist(shares, bins=30, color="C0", alpha=0.6, label="replicated share of 1s")
        ax.axvline(observed.mean(), color="k", lw=2, label="observed")
        ax.set_xlabel(f"share of 1s in {fitted_state(estimator).target_name or 'y'}")
        ax.set_ylabel("replicated data sets")
    else:
        everything = np.concatenate([observed, replicated[chosen].ravel()])
        bins = np.histogram_bin_edges(everything, bins=40)
        for number, index in enumerate(chosen):
            ax.hist(
                replicated[index],
                bins=bins,
                density=True,
                histtype="step",
                color="C0",
                alpha=0.2,
                lw=0.8,
                label="replicated" if number == 0 else None,
            )
        ax.hist(
            observed, bins=bins, density=True, histtype="step", color="k", lw=2, label="observed"
        )
        ax.set_xlabel(fitted_state(estimator).target_name or "y")
        ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("posterior predictive check")
    fig.tight_layout()
    return fig, ax
