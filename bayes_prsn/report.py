"""What a fit is reported as: the coefficient table, the plain-text summary and the standard plots.

Used by the ``bayes-prsn`` command line (:mod:`bayes_prsn.cli`) and usable
from Python: :func:`coefficient_table`, :func:`summary_text`,
:func:`write_plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .models import family as family_of
from .smoothing import is_fallback
from .state import fitted_state, has_posterior

__all__ = ["coefficient_table", "summary_text", "write_plots", "PLOT_FILES"]

#: The PNG files :func:`write_plots` writes (the last two only with a posterior).
PLOT_FILES = (
    "coefficients.png",
    "forest.png",
    "clusters.png",
    "embedding.png",
    "covariate_importance.png",
    "trace.png",
    "ppc.png",
)


def coefficient_table(estimator, prob: float = 0.9) -> pd.DataFrame:
    """Per-sample coefficients (and intervals when a posterior exists), one row per sample.

    Interval columns are ``<name>_lower90``/``<name>_upper90`` at ``prob=0.9``.
    """
    state = fitted_state(estimator)
    names = [str(name) for name in state.feature_labels]
    table = pd.DataFrame(estimator.coef_, columns=names)
    if estimator.fit_intercept:
        table["intercept"] = estimator.intercept_
    if has_posterior(estimator):
        lower, upper = estimator.coef_interval(prob)
        percent = f"{100 * prob:g}"
        for j, name in enumerate(names):
            table[f"{name}_lower{percent}"] = lower[:, j]
            table[f"{name}_upper{percent}"] = upper[:, j]
        if estimator.fit_intercept:
            low, high = estimator.intercept_interval(prob)
            table[f"intercept_lower{percent}"], table[f"intercept_upper{percent}"] = low, high
    table.index = pd.Index(state.sample_index, name=state.sample_index_name or "sample")
    return table


def _residual_sd(estimator) -> float | None:
    """Root mean squared residual of the fitted per-sample models (gaussian), units of y."""
    if estimator.family_ != "gaussian":
        return None
    state = fitted_state(estimator)
    fitted = np.sum(state.X * estimator.coef_, axis=1) + estimator.intercept_
    return float(np.sqrt(np.mean((state.y - fitted) ** 2)))


def _fit_lines(estimator) -> list[str]:
    """How much was smoothed, the residual sd and the held-out comparison with one model."""
    state = fitted_state(estimator)
    lines = []
    residual = _residual_sd(estimator)
    if residual is not None:
        lines.append(
            f"residual sd of the per-sample models (in-sample, units of y): {residual:.4g}"
        )
    if state.members:
        lines.append(
            f"coefficients: the average of {len(state.fits)} fits, each with its own "
            "held-out split and start (n_fits);\n  the smoothing below is the first fit's."
        )
    if estimator.noise_scale_ is not None:
        lines.append(
            f"smoothing: noise scale {estimator.noise_scale_:.4g} (units of y), chosen on "
            "held-out samples.\n  It sets how far each sample's model may move from the "
            "population's (larger: closer to it);\n  it is not an estimate of the noise."
        )
    report = state.validation_scores
    if report is not None and any("prior_scale" in c for c in report["candidates"]):
        lines.append(
            f"smoothing: psi scale {estimator.prior_scale_:.4g} (standardised predictors, "
            "linear predictor), chosen on held-out samples.\n  It sets how far each "
            "sample's model may move from the population's (smaller: closer to it)."
        )
    if report is not None:
        fallback = is_fallback(report)
        score = report["population"] if fallback else report["scores"][report["chosen"]]
        measure = family_of(estimator.family_).loss_name
        lines.append(
            f"held-out fit (samples left out of the fit; {measure}):\n  per-sample models "
            f"{score:.4g}, one population model {report['population']:.4g}"
            + (
                "; per-sample models did not beat the population model"
                + (" by more than one standard error" if report.get("margin", 1.0) else "")
                + ", so every sample's model is the population's"
                if fallback
                else ""
            )
        )
        check = report.get("confirmation")
        smoothed = report.get("smoothed_fallback")
        if check is not None:
            verdict = "per-sample models kept"
            if fallback or smoothed is not None:
                verdict = "the population model wins"
            lines.append(
                f"  the split favoured the population model; on {check['folds']} folds "
                f"({check['held_out']} samples held out once) per-sample models "
                f"{check['score']:.4g}, population {check['population']:.4g}: {verdict}"
            )
        if smoothed is not None:
            lines.append(
                f"  strongly smoothed per-sample models {smoothed['score']:.4g} against the "
                f"population model's {smoothed['population']:.4g} ({smoothed['held_out']} "
                "held-out samples): "
                + (
                    "they beat it by more than one standard error and are kept"
                    if smoothed["kept"]
                    else "the population model stays"
                )
            )
    return lines


def _missing_lines(estimator) -> list[str]:
    frame = fitted_state(estimator).covariates_frame
    counts = frame.isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return ["missing covariate values: none"]
    listed = ", ".join(f"{name} {int(n)} of {len(frame)}" for name, n in counts.items())
    return [f"missing covariate values (they contribute nothing to distances): {listed}"]


def _cluster_lines(clusters) -> list[str]:
    sizes = np.bincount(clusters.labels.to_numpy()).tolist()
    lines = [
        f"clusters of the per-sample models (chosen by BIC): {clusters.n_clusters}, sizes {sizes}"
    ]
    if clusters.n_clusters < 2 or clusters.separation.empty:
        return lines
    top = clusters.separation.iloc[0]
    name = clusters.separation.index[0]
    lines.append(f"  most associated covariate: {name} ({top['measure']} {top['association']:.2f})")
    if top["measure"] == "adjusted eta-squared":
        lines.append(
            f"  {name} is numeric: if the models change smoothly with it (coefficients.png),\n"
            f"  the clusters are ranges of {name} cut out of a continuum, not distinct groups."
        )
    return lines


def summary_text(
    estimator,
    *,
    seconds: float | None = None,
    data_name: str = "",
    importance: pd.DataFrame | None = None,
    clusters=None,
) -> str:
    """A plain-text summary of a fit (and its posterior).

    ``importance`` and ``clusters`` (from :mod:`bayes_prsn.analysis`) are
    computed when not given.
    """
    from . import analysis

    if importance is None:
        importance = analysis.covariate_importance(estimator)
    if clusters is None:
        clusters = analysis.cluster(estimator)
    state = fitted_state(estimator)
    names = [str(name) for name in state.feature_labels]
    models = pd.DataFrame(estimator.coef_, columns=names).assign(intercept=estimator.intercept_)
    lines = [
        f"bayes_prsn {type(estimator).__name__} (family {estimator.family_})"
        + (f" on {data_name}" if data_name else ""),
        f"samples: {len(state.sample_index)}, target: {state.target_name or 'y'}, predictors: "
        f"{names}, covariates: {list(estimator.covariate_names_)}",
        f"fit: {estimator.n_steps_} SVI steps, converged: {estimator.converged_}"
        + (f", {seconds:.1f} s" if seconds is not None else ""),
        *_fit_lines(estimator),
        *_missing_lines(estimator),
        "",
        "coefficients: population model vs spread of the per-sample models",
    ]
    table = pd.DataFrame(
        {
            "population": np.append(estimator.population_coef_, estimator.population_intercept_),
            "mean": models.mean(),
            "sd": models.std(),
            "5%": models.quantile(0.05),
            "95%": models.quantile(0.95),
        }
    )
    lines.append(table.to_string(float_format=lambda v: f"{v:.4g}"))
    lines += [
        "",
        "which covariates matter",
        "  weight: the covariate's learned weight in the distance between samples (on its own",
        "    internal scale, per level mismatch for categorical ones: weights of different",
        "    covariates are not directly comparable);",
        "  explained: the share of the per-sample models' spread the covariate alone explains.",
        "  The two can rank covariates differently: a covariate can shape the models through",
        "  the encoder with a small distance weight, or be correlated with one that matters.",
    ]
    shown = importance.dropna(axis=1, how="all")
    lines.append(shown.to_string(float_format=lambda v: f"{v:.3g}"))
    lines.append("")
    lines += _cluster_lines(clusters)
    if has_posterior(estimator):
        diagnostics = estimator.posterior_diagnostics_
        lines.append("")
        lines.append(
            f"posterior ({diagnostics['method']}): {diagnostics['num_draws']} draws in "
            f"{diagnostics['seconds']:.1f} s"
        )
        fits = diagnostics.get("fits", 1)
        if fits > 1:
            lines.append(
                f"pooled over {fits} fits of the same data (this one and {fits - 1} refits with "
                "other random states: the intervals include how much the fit depends on its "
                "held-out split and start; R-hat and ESS are each fit's, the worst)"
            )
        if "max_rhat" in diagnostics:
            lines.append(
                f"max R-hat {diagnostics['max_rhat']:.4f}, min bulk ESS "
                f"{diagnostics['min_ess_bulk']:.0f}, min tail ESS "
                f"{diagnostics['min_ess_tail']:.0f}, divergences {diagnostics['divergences']}, "
                f"converged: {diagnostics['converged']}"
            )
    return "\n".join(lines) + "\n"


def write_plots(
    estimator, out: Path, *, importance: pd.DataFrame | None = None, clusters=None
) -> list[Path]:
    """The standard plots as PNG files in ``out`` (see :data:`PLOT_FILES`).

    ``coefficients.png`` shows each coefficient against the covariate that
    explains most of its spread (:func:`bayes_prsn.analysis.coefficient_drivers`);
    the embedding is coloured by the most important covariate. ``importance``
    and ``clusters`` are computed when not given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import analysis, plots

    written = []

    def save(fig, name):
        path = Path(out) / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if importance is None:
        importance = analysis.covariate_importance(estimator)
    if clusters is None:
        clusters = analysis.cluster(estimator)
    drivers = analysis.coefficient_drivers(estimator)
    n_features = len(fitted_state(estimator).feature_labels)
    fig, axes = plt.subplots(1, n_features, figsize=(4.5 * n_features, 3.8), squeeze=False)
    for j, ax in enumerate(axes[0]):
        row = drivers.iloc[j]
        covariate = row.idxmax()
        plots.plot_coefficient_vs_covariate(estimator, j, covariate, ax=ax)
        ax.set_title(f"{covariate} explains {100 * row.max():.0f}% of its spread", fontsize=9)
    save(fig, "coefficients.png")
    save(plots.plot_coefficients(estimator)[0], "forest.png")
    save(analysis.plot_clusters(estimator, clusters)[0], "clusters.png")
    save(analysis.plot_embedding(estimator, color_by=importance.index[0])[0], "embedding.png")
    save(analysis.plot_covariate_importance(importance)[0], "covariate_importance.png")
    if has_posterior(estimator) and estimator.posterior_method_ == "nuts":
        save(plots.plot_trace(estimator)[0], "trace.png")
    if has_posterior(estimator):
        save(plots.plot_ppc(estimator)[0], "ppc.png")
    return written
