r"""Analysis of the sample-specific models: embeddings, clusters, zoom, covariate importance.

Every function takes a fitted :class:`~bayes_prsn.PersonalizedRegression` or
:class:`~bayes_prsn.PersonalizedClassifier`. When :meth:`sample_posterior`
has been called, summaries come with credible intervals computed from the
draws; otherwise they use the MAP fit and the interval columns are NaN.

The per-sample models are the rows :math:`(\theta_i, b_i)` (coefficients and
intercept). For embeddings and clustering each column is standardised
across samples, so that a coefficient measured in large units does not
dominate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from . import arviz_compat
from .association import adjusted_eta_squared, covariate_groups, cramers_v
from .figures import figure_for, pyplot
from .inference_data import check_prob, interval, pooled_draws
from .state import fitted_state, has_posterior

__all__ = [
    "model_matrix",
    "Embedding",
    "embed",
    "Clustering",
    "cluster",
    "zoom",
    "covariate_importance",
    "coefficient_drivers",
    "plot_embedding",
    "plot_clusters",
    "plot_zoom",
    "plot_covariate_importance",
]

#: A larger number of clusters must lower the BIC by more than this to be chosen
#: (a BIC difference under 10 is not strong evidence; Kass and Raftery, 1995).
BIC_MARGIN = 10.0


def _labels(estimator) -> pd.Index:
    return pd.Index(fitted_state(estimator).sample_index, name="sample")


def _columns(estimator) -> list[str]:
    names = [str(name) for name in fitted_state(estimator).feature_labels]
    return names + (["intercept"] if estimator.fit_intercept else [])


def _draws(estimator):
    """(draws, n_samples, n_columns) posterior draws of every model, or None."""
    if not has_posterior(estimator):
        return None
    coef = pooled_draws(estimator.idata_, "coef")
    if estimator.fit_intercept:
        intercept = pooled_draws(estimator.idata_, "intercept")[..., None]
        coef = np.concatenate([coef, intercept], axis=-1)
    return coef


def model_matrix(estimator, *, standardize: bool = False) -> pd.DataFrame:
    """The per-sample models as a table: one row per sample, one column per coefficient.

    Parameters
    ----------
    estimator : fitted estimator
    standardize : bool, default False
        Centre each column and divide it by its standard deviation across samples.

    Returns
    -------
    pandas.DataFrame of shape (n_samples, n_predictors [+ 1 for the intercept])
        The MAP coefficients (the posterior means when a posterior exists),
        indexed by the training samples' labels.
    """
    frame = _models(estimator)[0]
    return _standardize(frame) if standardize else frame


def _models(estimator):
    """:func:`model_matrix` (unstandardised) and the draws it averages (None if none)."""
    fitted_state(estimator)
    draws = _draws(estimator)
    if draws is not None:
        values = draws.mean(axis=0)
    else:
        values = estimator.coef_
        if estimator.fit_intercept:
            values = np.column_stack([values, estimator.intercept_])
    frame = pd.DataFrame(values, index=_labels(estimator), columns=_columns(estimator))
    return frame, draws


def _components(matrix: pd.DataFrame, n_components: int | None = None):
    """(scores, explained variance ratio) of the standardised models' principal components."""
    from sklearn.decomposition import PCA

    values = matrix.to_numpy()
    if np.all(np.abs(values) < 1e-9):  # one model for all (the population fallback): no spread
        return np.zeros((values.shape[0], n_components or 1)), np.zeros(n_components or 1)
    pca = PCA(n_components=n_components).fit(values)
    return pca.transform(values), pca.explained_variance_ratio_


def _standardize(frame: pd.DataFrame) -> pd.DataFrame:
    spread = frame.std(axis=0, ddof=0)
    return (frame - frame.mean(axis=0)) / spread.where(spread > 1e-12 * (1 + frame.abs().max()), 1)


class Embedding(NamedTuple):
    """Low-dimensional coordinates of the per-sample models.

    Attributes
    ----------
    coordinates : pandas.DataFrame (n_samples, n_components)
        Columns ``PC1``, ``PC2``, ... (``UMAP1``, ... for UMAP).
    explained_variance_ratio : ndarray or None
        Share of the (standardised) models' variance per component (PCA only).
    method : str
    """

    coordinates: pd.DataFrame
    explained_variance_ratio: np.ndarray | None
    method: str


def embed(estimator, n_components: int = 2, *, method: str = "pca", random_state=0) -> Embedding:
    """Project the per-sample models to ``n_components`` dimensions.

    Parameters
    ----------
    method : {"pca", "umap"}, default "pca"
        ``"umap"`` needs the ``umap-learn`` package.
    """
    matrix = model_matrix(estimator, standardize=True)
    if method not in ("pca", "umap"):
        raise ValueError(f"method must be 'pca' or 'umap'; got {method!r}.")
    limit = min(matrix.shape)
    if not isinstance(n_components, int) or not 1 <= n_components <= limit:
        raise ValueError(f"n_components must be an integer in 1..{limit}; got {n_components!r}.")
    if method == "umap":
        try:
            import umap
        except ImportError as error:
            raise ImportError(
                "method='umap' needs umap-learn (pip install umap-learn); use method='pca'."
            ) from error
        coordinates = umap.UMAP(n_components=n_components, random_state=random_state)
        values, ratio, prefix = coordinates.fit_transform(matrix.to_numpy()), None, "UMAP"
    else:
        (values, ratio), prefix = _components(matrix, n_components), "PC"
    columns = [f"{prefix}{j + 1}" for j in range(n_components)]
    return Embedding(pd.DataFrame(values, index=matrix.index, columns=columns), ratio, method)


class Clustering(NamedTuple):
    """Clusters of the per-sample models.

    Attributes
    ----------
    labels : pandas.Series (n_samples,)
        Cluster of each sample (0 .. n_clusters-1, largest cluster first).
    n_clusters : int
    bic : pandas.Series
        BIC of the Gaussian mixture for every number of clusters tried.
    profiles : pandas.DataFrame
        One row per (cluster, coefficient): ``n_samples``, ``mean`` (of the
        members' coefficients), ``sd`` (spread across members) and
        ``lower``/``upper``, a credible interval of the cluster mean (NaN
        without a posterior).
    separation : pandas.DataFrame
        One row per covariate: ``association`` with the clusters (adjusted
        eta-squared for numeric covariates, bias-corrected Cramér's V for
        categorical ones; 0 means none, 1 means the covariate determines the
        cluster), largest first.
    """

    labels: pd.Series
    n_clusters: int
    bic: pd.Series
    profiles: pd.DataFrame
    separation: pd.DataFrame


def cluster(
    estimator,
    n_clusters: int | str = "auto",
    *,
    max_clusters: int = 8,
    prob: float = 0.9,
    random_state=0,
) -> Clustering:
    """Cluster the samples' models; the number of clusters is chosen from the data.

    The standardised models are reduced to the principal components that
    hold 99% of their variance (at most the rank of the fit), and Gaussian
    mixtures with 1 to ``max_clusters`` components are fitted. ``"auto"``
    takes the smallest number of clusters whose BIC is within
    :data:`BIC_MARGIN` of the lowest, so that one cluster (no group
    structure) is a possible answer.

    Parameters
    ----------
    n_clusters : int or "auto"
        A fixed number of clusters, or ``"auto"``.
    max_clusters : int, default 8
    prob : float, default 0.9
        Probability of the cluster profiles' credible intervals.
    """
    from sklearn.mixture import GaussianMixture

    prob = check_prob(prob)
    models, draws = _models(estimator)
    matrix = _standardize(models)
    n_samples = matrix.shape[0]
    if n_clusters != "auto" and (
        isinstance(n_clusters, bool)
        or not isinstance(n_clusters, int | np.integer)
        or not 1 <= n_clusters <= n_samples
    ):
        raise ValueError(
            f"n_clusters must be 'auto' or an integer in 1..{n_samples}; got {n_clusters!r}."
        )
    if isinstance(max_clusters, bool) or not isinstance(max_clusters, int) or max_clusters < 1:
        raise ValueError(f"max_clusters must be an integer >= 1; got {max_clusters!r}.")
    scores, ratio = _components(matrix)
    points = scores[:, : int(np.searchsorted(np.cumsum(ratio), 0.99) + 1)]
    # Identical models (no spread at all) form one cluster.
    limit = min(max_clusters, n_samples // 5 or 1) if ratio.sum() > 0 else 1
    candidates = range(1, limit + 1) if n_clusters == "auto" else [int(n_clusters)]
    mixtures, bic = {}, {}
    for k in candidates:
        mixture = GaussianMixture(
            k, covariance_type="full", n_init=3, reg_covar=1e-3, random_state=random_state
        ).fit(points)
        mixtures[k], bic[k] = mixture, mixture.bic(points)
    bic = pd.Series(bic, name="bic").rename_axis("n_clusters")
    chosen = int(min(k for k in bic.index if bic[k] <= bic.min() + BIC_MARGIN))
    raw = mixtures[chosen].predict(points)
    order = np.argsort(-np.bincount(raw, minlength=chosen), kind="stable")
    labels = np.empty_like(raw)
    for new, old in enumerate(order):
        labels[raw == old] = new
    labels = pd.Series(labels, index=matrix.index, name="cluster")
    return Clustering(
        labels,
        chosen,
        bic,
        _group_profiles(models, draws, labels.to_numpy(), prob),
        _separation(estimator, labels.to_numpy()),
    )


def _group_profiles(matrix: pd.DataFrame, draws, groups: np.ndarray, prob: float) -> pd.DataFrame:
    """Mean, spread and credible interval of the mean coefficient of every group."""
    rows = []
    for group in pd.unique(groups):
        members = groups == group
        values = matrix.to_numpy()[members]
        if draws is not None:
            lower, upper = interval(draws[:, members].mean(axis=1), prob, "eti")
        else:
            lower = upper = np.full(values.shape[1], np.nan)
        for j, name in enumerate(matrix.columns):
            rows.append(
                {
                    "group": group,
                    "coefficient": name,
                    "n_samples": int(members.sum()),
                    "mean": values[:, j].mean(),
                    "sd": values[:, j].std(ddof=1) if members.sum() > 1 else 0.0,
                    "lower": lower[j],
                    "upper": upper[j],
                }
            )
    frame = pd.DataFrame(rows).rename(columns={"group": "cluster"})
    return frame.sort_values(["cluster", "coefficient"], kind="stable").set_index(
        ["cluster", "coefficient"]
    )


def _separation(estimator, labels: np.ndarray) -> pd.DataFrame:
    frame = fitted_state(estimator).covariates_frame
    rows = []
    one_hot = np.eye(int(labels.max()) + 1)[labels]
    for name in frame.columns:
        values = frame[name]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric:
            numbers = values.to_numpy(dtype=float, na_value=np.nan)
            association = adjusted_eta_squared(
                numbers[:, None], np.where(np.isfinite(numbers), labels, np.nan)
            )
            measure = "adjusted eta-squared"
        else:
            codes = covariate_groups(values, 0)
            association = cramers_v(codes, labels.astype(float)) if one_hot.shape[1] > 1 else 0.0
            measure = "Cramér's V"
        rows.append({"covariate": str(name), "association": association, "measure": measure})
    table = pd.DataFrame(rows).set_index("covariate")
    return table.sort_values("association", ascending=False, kind="stable")


def zoom(
    estimator,
    feature,
    *,
    by=None,
    clusters: Clustering | None = None,
    samples=None,
    n_bins: int = 4,
    prob: float = 0.9,
) -> pd.DataFrame:
    """One coefficient at every level: population, cluster, covariate group and sample.

    Parameters
    ----------
    feature : name or index
        The coefficient (a predictor's name or position, or ``"intercept"``).
    by : str or list of str, optional
        Covariates whose groups get a row each (numeric covariates are cut at
        their quantiles into ``n_bins`` groups). Default: every covariate used
        in ``fit``.
    clusters : Clustering, optional
        The result of :func:`cluster`; computed with defaults when omitted.
    samples : list of labels, optional
        Samples to list individually (default the first five).
    prob : float, default 0.9
        Probability of the credible intervals (equal-tailed).

    Returns
    -------
    pandas.DataFrame
        Columns ``level`` (``"population"``, ``"cluster"``, ``"group"``,
        ``"sample"``), ``name``, ``n_samples``, ``mean``, ``sd`` (spread of
        the members' coefficients), ``lower`` and ``upper`` (credible interval
        of the mean over the members, NaN without a posterior). The first
        row is the population GLM (one model for all), the second the mean
        of all samples' models.
    """
    prob = check_prob(prob)
    matrix, draws = _models(estimator)
    columns = list(matrix.columns)
    if isinstance(feature, int | np.integer) and not isinstance(feature, bool):
        if not 0 <= feature < len(columns):
            raise ValueError(f"feature index {feature} is out of range (0..{len(columns) - 1}).")
        column = int(feature)
    elif str(feature) in columns:
        column = columns.index(str(feature))
    else:
        raise ValueError(f"unknown feature {feature!r}; choose from {columns}.")
    values = matrix.to_numpy()[:, column]
    draws = None if draws is None else draws[:, :, column]
    frame = fitted_state(estimator).covariates_frame
    if by is None:
        by = list(frame.columns)
    elif isinstance(by, str):
        by = [by]
    unknown = [name for name in by if name not in frame.columns]
    if unknown:
        raise ValueError(f"by {unknown} are not covariates; choose from {list(frame.columns)}.")
    labels = list(fitted_state(estimator).sample_index)
    if samples is None:
        samples = labels[:5]
    missing = [s for s in samples if s not in labels]
    if missing:
        raise ValueError(f"samples {missing[:5]} are not training sample labels.")

    def row(level, name, members):
        members = np.asarray(members, dtype=bool)
        lower = upper = np.nan
        if draws is not None:
            lower, upper = interval(draws[:, members].mean(axis=1)[:, None], prob, "eti")
            lower, upper = float(lower[0]), float(upper[0])
        count = int(members.sum())
        return {
            "level": level,
            "name": name,
            "n_samples": count,
            "mean": float(values[members].mean()),
            "sd": float(values[members].std(ddof=1)) if count > 1 else 0.0,
            "lower": lower,
            "upper": upper,
        }

    if columns[column] == "intercept":
        population = estimator.population_intercept_
    else:
        population = estimator.population_coef_[column]
    n = len(values)
    rows = [
        {
            "level": "population",
            "name": "population model (one model for all)",
            "n_samples": n,
            "mean": float(population),
            "sd": 0.0,
            "lower": np.nan,
            "upper": np.nan,
        },
        row("population", "all samples (mean of their models)", np.ones(n)),
    ]
    if clusters is None:
        clusters = cluster(estimator, prob=prob)
    for k in range(clusters.n_clusters):
        rows.append(row("cluster", f"cluster {k}", clusters.labels.to_numpy() == k))
    for name in by:
        for label, members in _covariate_levels(frame[name], name, n_bins):
            rows.append(row("group", label, members))
    for sample in samples:
        members = np.zeros(n, dtype=bool)
        members[labels.index(sample)] = True
        rows.append(row("sample", str(sample), members))
    table = pd.DataFrame(rows)
    table.attrs["feature"] = columns[column]
    return table


def _covariate_levels(values: pd.Series, name: str, n_bins: int):
    """``(label, members)`` of each group of one covariate: its levels, or quantile bins."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:
        binned = pd.qcut(values, n_bins, duplicates="drop")
        return [
            (f"{name} in {level}", (binned == level).to_numpy()) for level in binned.cat.categories
        ]
    return [
        (f"{name} = {level}", (values == level).to_numpy()) for level in pd.unique(values.dropna())
    ]


def covariate_importance(estimator, *, prob: float = 0.9, n_bins: int = 10) -> pd.DataFrame:
    r"""Which covariates matter: learned metric weights and explained model variance.

    Returns
    -------
    pandas.DataFrame, one row per covariate used in ``fit``, largest ``explained`` first
        ``weight``: the learned weight :math:`\phi_l` of the covariate in the
        metric (posterior mean when the posterior samples it, i.e. without
        the covariate encoder, else the MAP; on each covariate's
        internal robust scale, and for categorical covariates per mismatch,
        so weights of numeric and categorical covariates are not directly
        comparable); ``lower``/``upper``: its credible interval (NaN
        where it is not sampled); ``explained``: the share of the variance of the
        standardised per-sample models explained by the covariate alone
        (adjusted eta-squared over its levels, or ``n_bins`` quantile bins of
        a numeric covariate; near 0 for a covariate that does not matter).
    """
    prob = check_prob(prob)
    fitted_state(estimator)
    names = list(estimator.covariate_names_used_)
    weight = np.asarray(estimator.covariate_weights_, dtype=float)
    lower = upper = np.full(len(names), np.nan)
    if has_posterior(estimator) and "covariate_weights" in arviz_compat.group(
        estimator.idata_, "posterior"
    ):
        draws = pooled_draws(estimator.idata_, "covariate_weights")
        weight = draws.mean(axis=0)
        lower, upper = interval(draws, prob, "hdi")
    matrix = model_matrix(estimator, standardize=True).to_numpy()
    frame = fitted_state(estimator).covariates_frame
    explained = [
        adjusted_eta_squared(matrix, covariate_groups(frame[name], n_bins)) for name in names
    ]
    table = pd.DataFrame(
        {"weight": weight, "lower": lower, "upper": upper, "explained": explained},
        index=pd.Index(names, name="covariate"),
    )
    return table.sort_values("explained", ascending=False, kind="stable")


def coefficient_drivers(estimator, *, n_bins: int = 10) -> pd.DataFrame:
    """How much of each coefficient's spread across samples each covariate explains.

    Returns
    -------
    pandas.DataFrame, one row per coefficient, one column per covariate used
        The adjusted share of the variance of that coefficient across the
        per-sample models explained by the covariate alone (as ``explained``
        in :func:`covariate_importance`, one coefficient at a time). Its
        largest entry in a row names the covariate to plot the coefficient
        against.
    """
    fitted_state(estimator)
    matrix = model_matrix(estimator)
    frame = fitted_state(estimator).covariates_frame
    names = list(estimator.covariate_names_used_)
    table = pd.DataFrame(
        {
            name: [
                adjusted_eta_squared(
                    matrix[[column]].to_numpy(), covariate_groups(frame[name], n_bins)
                )
                for column in matrix.columns
            ]
            for name in names
        },
        index=pd.Index(matrix.columns, name="coefficient"),
    )
    table.columns.name = "covariate"
    return table


# ------------------------------------------------------------------- plots
def plot_embedding(
    estimator, *, color_by=None, embedding: Embedding | None = None, label=None, ax=None
):
    """Scatter of the per-sample models in two dimensions, coloured by a covariate.

    Parameters
    ----------
    color_by : str, array-like or None
        A covariate name, one value per training sample (e.g. cluster
        labels), or ``None``.
    label : str, optional
        Name of ``color_by`` in the legend (default: the covariate's name).
    embedding : Embedding, optional
        From :func:`embed`; PCA with two components when omitted.

    Returns
    -------
    fig, ax
    """
    if embedding is None:
        embedding = embed(estimator, 2)
    coordinates = embedding.coordinates
    if coordinates.shape[1] < 2:
        raise ValueError("plot_embedding needs an embedding with at least two components.")
    fig, ax = figure_for(ax, (5.5, 4.5))
    x, y = coordinates.iloc[:, 0], coordinates.iloc[:, 1]
    ratios = embedding.explained_variance_ratio
    flat = ratios is not None and len(ratios) > 1 and ratios[1] < 1e-6
    if flat:
        # The models vary along one direction only: the second axis would plot rounding noise.
        y = pd.Series(np.zeros(len(y)), index=y.index)
    name = None
    if color_by is None:
        ax.scatter(x, y, s=10)
    else:
        if isinstance(color_by, str):
            frame = fitted_state(estimator).covariates_frame
            if color_by not in frame.columns:
                raise ValueError(
                    f"unknown covariate {color_by!r}; choose from {list(frame.columns)}."
                )
            values, name = frame[color_by], color_by
        else:
            values, name = pd.Series(np.asarray(color_by)), "group"
            if len(values) != len(x):
                raise ValueError(f"color_by has {len(values)} values; pass one per sample.")
        name = label or name
        if pd.api.types.is_float_dtype(values):
            points = ax.scatter(x, y, c=values.to_numpy(dtype=float), s=10, cmap="viridis")
            fig.colorbar(points, ax=ax, label=name)
        else:
            levels = list(pd.unique(values.dropna()))
            try:
                levels = sorted(levels)  # the same level gets the same colour in every plot
            except TypeError:
                pass
            for number, level in enumerate(levels):
                members = (values == level).to_numpy()
                colour = f"C{number % 10}"
                ax.scatter(x[members], y[members], s=10, color=colour, label=str(level))
            ax.legend(title=name, fontsize=8)
    labels = list(coordinates.columns[:2])
    if embedding.explained_variance_ratio is not None:
        labels = [
            f"{label} ({100 * r:.0f}%)"
            for label, r in zip(labels, embedding.explained_variance_ratio, strict=False)
        ]
    ax.set_xlabel(labels[0])
    ax.set_ylabel("PC2: none (the models vary along one direction)" if flat else labels[1])
    ax.set_title("per-sample models" + (f" by {name}" if name else ""))
    fig.tight_layout()
    return fig, ax


def plot_clusters(estimator, clusters: Clustering | None = None):
    """The clusters in the model embedding and each cluster's coefficient profile.

    Returns
    -------
    fig, axes
        ``axes[0]``: PCA of the models coloured by cluster. The others, one
        per coefficient with its own y axis (so the intercept's scale does
        not flatten the slopes): each cluster's mean coefficient, in the
        same colour as in ``axes[0]``, with a credible interval of the mean
        (when a posterior exists) or bars of one standard deviation of the
        members (without one); the dashed line is the population model.
    """
    plt = pyplot()
    if clusters is None:
        clusters = cluster(estimator)
    profiles = clusters.profiles
    present = set(profiles.index.get_level_values("coefficient"))
    coefficients = [name for name in _columns(estimator) if name in present]  # the model's order
    n_columns = min(3, len(coefficients))
    n_rows = -(-len(coefficients) // n_columns)
    fig = plt.figure(figsize=(5.5 + 2.8 * n_columns, max(4.5, 2.4 * n_rows)))
    grid = fig.add_gridspec(n_rows, n_columns + 2)
    left = fig.add_subplot(grid[:, :2])
    plot_embedding(estimator, color_by=clusters.labels.to_numpy(), label="cluster", ax=left)
    left.set_title(f"{clusters.n_clusters} cluster(s) chosen by BIC")
    population = np.append(estimator.population_coef_, estimator.population_intercept_)
    names = _columns(estimator)
    axes = [left]
    with_interval = bool(profiles["lower"].notna().all())
    for number, coefficient in enumerate(coefficients):
        ax = fig.add_subplot(grid[number // n_columns, 2 + number % n_columns])
        for k in range(clusters.n_clusters):
            part = profiles.loc[(k, coefficient)]
            if with_interval:
                error = [[part["mean"] - part["lower"]], [part["upper"] - part["mean"]]]
            else:
                error = part["sd"]
            ax.errorbar([k], [part["mean"]], yerr=error, fmt="o", ms=4, color=f"C{k % 10}")
        if coefficient in names:
            ax.axhline(population[names.index(coefficient)], color="0.4", ls="--", lw=1)
        ax.set_xticks(range(clusters.n_clusters))
        ax.set_xlabel("cluster", fontsize=8)
        ax.set_title(str(coefficient), fontsize=9)
        ax.tick_params(labelsize=7)
        axes.append(ax)
    bars = (
        "bars: credible interval of the cluster mean"
        if with_interval
        else "bars: ±1 sd of the members"
    )
    fig.suptitle(f"cluster profiles (bars: {bars}; dashed: population model)", fontsize=9)
    fig.tight_layout()
    return fig, np.asarray(axes, dtype=object)


def plot_zoom(table: pd.DataFrame, ax=None):
    """Forest plot of a :func:`zoom` table: one row per level, intervals where known.

    Returns
    -------
    fig, ax
    """
    fig, ax = figure_for(ax, (6.5, 0.3 * len(table) + 1.2))
    positions = np.arange(len(table))[::-1]
    colours = {"population": "0.2", "cluster": "C1", "group": "C2", "sample": "C0"}
    for position, (_, entry) in zip(positions, table.iterrows(), strict=True):
        colour = colours.get(entry["level"], "C0")
        if np.isfinite(entry["lower"]):
            ax.hlines(position, entry["lower"], entry["upper"], color=colour, lw=2)
        elif entry["sd"] > 0:
            ax.hlines(
                position,
                entry["mean"] - entry["sd"],
                entry["mean"] + entry["sd"],
                color=colour,
                lw=1,
                alpha=0.5,
            )
        ax.plot(entry["mean"], position, "o", color=colour, ms=4)
    ax.set_yticks(positions)
    ax.set_yticklabels([f"{entry.level}: {entry.name}" for entry in table.itertuples()])
    ax.set_xlabel(f"coefficient of {table.attrs.get('feature', '')}")
    ax.set_title(
        "thick bars: credible intervals; thin bars: ±1 sd of the members' models", fontsize=8
    )
    fig.tight_layout()
    return fig, ax


def plot_covariate_importance(table: pd.DataFrame, axes=None):
    """Bar charts of a :func:`covariate_importance` table (weights with intervals, explained share).

    Returns
    -------
    fig, axes
    """
    fig, axes = figure_for(axes, (9, 0.4 * len(table) + 1.5), ncols=2, sharey=True)
    positions = np.arange(len(table))[::-1]
    error = None
    if table["lower"].notna().all():
        # A skewed posterior's mean can lie just outside its HDI: no negative bar lengths.
        error = np.clip(
            [table["weight"] - table["lower"], table["upper"] - table["weight"]], 0.0, None
        )
    axes[0].barh(positions, table["weight"], xerr=error, color="C0")
    axes[0].set_yticks(positions)
    axes[0].set_yticklabels(table.index)
    axes[0].set_xlabel("learned metric weight (phi)")
    axes[0].set_title("weight in the covariate distance (each on its own scale)", fontsize=8)
    axes[1].set_title("share of the models' spread the covariate alone explains", fontsize=8)
    axes[1].barh(positions, table["explained"], color="C2")
    axes[1].set_xlabel("share of model variance explained")
    fig.tight_layout()
    return fig, axes
