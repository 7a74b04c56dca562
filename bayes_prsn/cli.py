"""The ``bayes-prsn`` command line: fit, predict and a demo on simulated data.

::

    bayes-prsn fit data.csv --target y --covariates age,tissue --out fit_dir
    bayes-prsn fit data.csv --target y --predictors a,b,c --covariates age --posterior laplace \\
        --out fit_dir
    bayes-prsn predict fit_dir new.csv --out predictions.csv
    bayes-prsn demo --out demo_dir

Exit status: 0 on success, 1 when the data or a file is wrong (a one-line
message says what and what to do), 2 for a wrong command line, 130 when
interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .state import fitted_state, has_posterior

__all__ = ["main"]

MODEL_FILE = "model.bprsn"


class CommandError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise CommandError("an empty list of column names was given.")
    return names


def read_table(path, *, index_col=None) -> pd.DataFrame:
    """Read a CSV file with errors a shell user understands."""
    path = Path(path)
    if not path.exists():
        raise CommandError(f"{path}: no such file.")
    if path.is_dir():
        raise CommandError(f"{path} is a folder; give a CSV file.")
    try:
        frame = pd.read_csv(path, index_col=index_col)
    except pd.errors.EmptyDataError:
        raise CommandError(f"{path} is empty; it needs a header line and rows of data.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CommandError(f"{path} cannot be read as CSV: {first}") from None
    except OSError as err:
        raise CommandError(f"{path} cannot be read: {err.strerror or err}") from None
    if frame.shape[0] == 0:
        raise CommandError(f"{path} has a header but no rows of data.")
    if index_col is None and str(frame.columns[0]).startswith("Unnamed: 0"):
        # A CSV written by pandas with its index: use that column as sample labels.
        frame = frame.set_index(frame.columns[0])
        frame.index.name = None
    return frame


def _check_columns(frame: pd.DataFrame, names, option: str, path) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise CommandError(
            f"{path} has no column(s) {missing} (from {option}); its columns are "
            f"{list(map(str, frame.columns))}."
        )


def _choose_columns(frame: pd.DataFrame, args) -> tuple[list, list]:
    """Predictor and covariate columns; the one omitted is every other column."""
    path = args.data
    if args.target not in frame.columns:
        raise CommandError(
            f"{path} has no target column {args.target!r}; its columns are "
            f"{list(map(str, frame.columns))}. Name it with --target."
        )
    predictors, covariates = _split_names(args.predictors), _split_names(args.covariates)
    if predictors is None and covariates is None:
        raise CommandError(
            "name the covariates (--covariates age,tissue) or the predictors "
            "(--predictors a,b,c); the other is every remaining column."
        )
    others = [c for c in frame.columns if c != args.target]
    if predictors is not None:
        _check_columns(frame, predictors, "--predictors", path)
    if covariates is not None:
        _check_columns(frame, covariates, "--covariates", path)
    if predictors is None:
        predictors = [c for c in others if c not in covariates]
    if covariates is None:
        covariates = [c for c in others if c not in predictors]
    if args.target in predictors or args.target in covariates:
        raise CommandError(f"the target {args.target!r} cannot also be a predictor or covariate.")
    if not predictors:
        raise CommandError("no predictor column is left; name them with --predictors.")
    if not covariates:
        raise CommandError("no covariate column is left; name them with --covariates.")
    bad = [c for c in predictors if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise CommandError(
            f"predictor column(s) {bad} are not numeric; encode them as numbers or pass them "
            "as --covariates (covariates may be categorical)."
        )
    return predictors, covariates


def _estimator(args):
    from . import PersonalizedClassifier, PersonalizedRegression

    settings = {
        "rank": args.rank,
        "n_neighbors": args.n_neighbors,
        "gamma": args.gamma,
        "max_steps": args.max_steps,
        "random_state": args.random_state,
        "progress_bar": not args.quiet,
    }
    if args.family == "bernoulli":
        return PersonalizedClassifier(**settings)
    return PersonalizedRegression(family=args.family, **settings)


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message, flush=True)


def coefficient_table(estimator, prob: float = 0.9) -> pd.DataFrame:
    """Per-sample coefficients (and intervals when a posterior exists), one row per sample."""
    names = [str(name) for name in fitted_state(estimator).feature_labels]
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
    table.index = pd.Index(fitted_state(estimator).sample_index, name="sample")
    return table


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
    names = [str(name) for name in fitted_state(estimator).feature_labels]
    models = pd.DataFrame(estimator.coef_, columns=names).assign(intercept=estimator.intercept_)
    lines = [
        f"bayes_prsn {type(estimator).__name__} (family {estimator.family_})"
        + (f" on {data_name}" if data_name else ""),
        f"samples: {len(fitted_state(estimator).sample_index)}, predictors: {names}, covariates: "
        f"{list(estimator.covariate_names_)}",
        f"fit: {estimator.n_steps_} SVI steps, converged: {estimator.converged_}"
        + (f", {seconds:.1f} s" if seconds is not None else ""),
    ]
    if estimator.noise_scale_ is not None:
        lines.append(
            f"noise scale used for smoothing (chosen on held-out samples): "
            f"{estimator.noise_scale_:.4g}"
        )
    lines.append("")
    lines.append("coefficients: population model vs spread of the per-sample models")
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
    lines.append("")
    lines.append("which covariates matter (learned metric weight; share of model variance)")
    shown = importance.dropna(axis=1, how="all")
    lines.append(shown.to_string(float_format=lambda v: f"{v:.3g}"))
    lines.append("")
    lines.append(
        f"clusters of the per-sample models (chosen by BIC): {clusters.n_clusters}, sizes "
        f"{np.bincount(clusters.labels.to_numpy()).tolist()}"
    )
    if has_posterior(estimator):
        diagnostics = estimator.posterior_diagnostics_
        lines.append("")
        lines.append(
            f"posterior ({diagnostics['method']}): {diagnostics['num_draws']} draws in "
            f"{diagnostics['seconds']:.1f} s"
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
    """The standard plots as PNG files in ``out``.

    Coefficients and the embedding are shown against the most important
    covariate; ``importance`` and ``clusters`` are computed when not given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import analysis, plots

    written = []

    def save(fig, name):
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if importance is None:
        importance = analysis.covariate_importance(estimator)
    if clusters is None:
        clusters = analysis.cluster(estimator)
    covariate = importance.index[0]
    n_features = len(fitted_state(estimator).feature_labels)
    fig, axes = plt.subplots(1, n_features, figsize=(4.5 * n_features, 3.8), squeeze=False)
    for j, ax in enumerate(axes[0]):
        plots.plot_coefficient_vs_covariate(estimator, j, covariate, ax=ax)
    save(fig, "coefficients.png")
    save(plots.plot_coefficients(estimator)[0], "forest.png")
    save(analysis.plot_clusters(estimator, clusters)[0], "clusters.png")
    save(analysis.plot_embedding(estimator, color_by=covariate)[0], "embedding.png")
    save(analysis.plot_covariate_importance(importance)[0], "covariate_importance.png")
    if has_posterior(estimator) and estimator.posterior_method_ == "nuts":
        save(plots.plot_trace(estimator)[0], "trace.png")
    if has_posterior(estimator):
        save(plots.plot_ppc(estimator)[0], "ppc.png")
    return written


def run_fit(args, frame: pd.DataFrame | None = None) -> int:
    fit_and_write(args, frame)
    return 0


def fit_and_write(args, frame: pd.DataFrame | None = None):
    """``bayes-prsn fit``: fit, optionally sample, write every output; returns the estimator."""
    from . import ConvergenceWarning, analysis, arviz_compat

    if frame is None:
        frame = read_table(args.data, index_col=args.index_col)
    predictors, covariates = _choose_columns(frame, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    estimator = _estimator(args)
    _say(
        args,
        f"fitting {type(estimator).__name__} on {frame.shape[0]} samples: predictors "
        f"{predictors}, covariates {covariates}",
    )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(frame[predictors], frame[args.target], covariates=frame[covariates])
        seconds = time.perf_counter() - start
        if args.posterior:
            _say(args, f"sampling the posterior ({args.posterior})")
            options = {"random_state": args.random_state}
            if args.num_samples is not None:
                options["num_samples"] = args.num_samples
            if args.posterior == "nuts":
                options.update(num_warmup=args.num_warmup, num_chains=args.num_chains)
            estimator.sample_posterior(args.posterior, **options)
    for warning in caught:
        print(f"bayes-prsn: warning: {warning.message}", file=sys.stderr)
    coefficient_table(estimator, args.prob).to_csv(out / "coefficients.csv")
    estimator.save(out / MODEL_FILE)
    if has_posterior(estimator):
        arviz_compat.to_netcdf(estimator.idata_, out / "posterior.nc")
    importance = analysis.covariate_importance(estimator)
    clusters = analysis.cluster(estimator)
    summary = summary_text(
        estimator,
        seconds=seconds,
        data_name=str(args.data),
        importance=importance,
        clusters=clusters,
    )
    (out / "summary.txt").write_text(summary)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "bayes-prsn: warning: matplotlib is not installed, so no plots were written; "
            "pip install 'bayes_prsn[plots]' for them.",
            file=sys.stderr,
        )
    else:
        write_plots(estimator, out, importance=importance, clusters=clusters)
    if not args.quiet:
        print(summary)
        print(f"wrote {sorted(p.name for p in out.iterdir())} to {out}/")
    return estimator


def run_predict(args) -> int:
    from . import load

    estimator = load(args.model)
    frame = read_table(args.data, index_col=args.index_col)
    predictors = [str(name) for name in fitted_state(estimator).feature_labels]
    covariates = list(estimator.covariate_names_)
    _check_columns(frame, predictors, "the fitted model's predictors", args.data)
    _check_columns(frame, covariates, "the fitted model's covariates", args.data)
    bad = [c for c in predictors if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise CommandError(f"predictor column(s) {bad} in {args.data} are not numeric.")
    X, U = frame[predictors], frame[covariates]
    table = pd.DataFrame(index=frame.index)
    interval = args.interval and has_posterior(estimator)
    if args.interval and not interval:
        raise CommandError(
            "--interval needs a posterior: fit with --posterior nuts|laplace|vi first."
        )
    if estimator.family_ == "bernoulli":
        if interval:
            proba, lower, upper = estimator.predict_proba(
                X, U, return_interval=True, prob=args.prob
            )
            table["probability"], table["lower"], table["upper"] = proba[:, 1], lower, upper
        else:
            table["probability"] = estimator.predict_proba(X, U)[:, 1]
        table["label"] = (table["probability"] > 0.5).astype(int)
    elif interval:
        mean, lower, upper = estimator.predict(X, U, return_interval=True, prob=args.prob)
        table["prediction"], table["lower"], table["upper"] = mean, lower, upper
    else:
        table["prediction"] = estimator.predict(X, U)
    coef = estimator.predict_coef(U)
    for j, name in enumerate(predictors):
        table[f"coef_{name}"] = coef[:, j]
    if estimator.fit_intercept:
        table["intercept"] = estimator.predict_intercept(U)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out)
    _say(args, f"wrote predictions for {len(table)} samples to {out}")
    return 0


def run_demo(args) -> int:
    from . import simulate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = simulate.make_low_rank(
        n_samples=args.n_samples, n_features=3, n_noise_covariates=1, random_state=args.random_state
    )
    frame = pd.DataFrame(data.X, columns=[f"x{j}" for j in range(data.X.shape[1])])
    frame = pd.concat([frame, data.covariates], axis=1)
    frame.insert(0, "y", data.y)
    frame.index = pd.Index([f"sample{i}" for i in range(len(frame))])
    frame.to_csv(out / "data.csv")
    truth = pd.DataFrame(data.coef, columns=[f"x{j}" for j in range(data.X.shape[1])])
    truth.index = frame.index
    truth.to_csv(out / "true_coefficients.csv")
    _say(
        args,
        f"demo: {args.n_samples} simulated samples with known per-sample coefficients "
        f"(data.csv, true_coefficients.csv in {out}/)",
    )
    args.data = out / "data.csv"
    args.target = "y"
    args.covariates = ",".join(data.covariates.columns)
    args.predictors = None
    args.index_col = None
    estimator = fit_and_write(args, read_table(args.data))
    mse = float(np.mean((estimator.coef_ - data.coef) ** 2))
    population = float(np.mean((estimator.population_coef_ - data.coef) ** 2))
    message = (
        f"demo: theta-MSE of the per-sample models {mse:.4f} against {population:.4f} for one "
        f"population model (truth in true_coefficients.csv)"
    )
    with open(out / "summary.txt", "a") as handle:
        handle.write("\n" + message + "\n")
    _say(args, message)
    return 0


def _add_model_options(parser) -> None:
    parser.add_argument(
        "--family",
        choices=("gaussian", "poisson", "bernoulli"),
        default="gaussian",
        help="likelihood: gaussian (linear), poisson (counts) or bernoulli (0/1, logistic)",
    )
    parser.add_argument(
        "--posterior",
        choices=("nuts", "laplace", "vi"),
        default=None,
        help="also sample the posterior for credible intervals (default: MAP only)",
    )
    parser.add_argument("--num-samples", type=int, default=None, help="posterior draws")
    parser.add_argument("--num-warmup", type=int, default=1000, help="NUTS warm-up per chain")
    parser.add_argument("--num-chains", type=int, default=4, help="NUTS chains")
    parser.add_argument("--prob", type=float, default=0.9, help="credible interval probability")
    parser.add_argument("--rank", type=int, default=3)
    parser.add_argument("--n-neighbors", type=int, default=25)
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-prsn",
        description="Personalized regression: one model per sample, with uncertainty.",
    )
    from .version import __version__

    parser.add_argument("--version", action="version", version=f"bayes_prsn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit one model per sample to a CSV file")
    fit.add_argument("data", help="CSV file, one row per sample")
    fit.add_argument("--target", required=True, help="column of the response")
    fit.add_argument("--predictors", help="comma-separated predictor columns (default: the rest)")
    fit.add_argument("--covariates", help="comma-separated covariate columns (default: the rest)")
    fit.add_argument("--index-col", default=None, help="column holding sample labels")
    fit.add_argument("--out", required=True, help="output folder")
    _add_model_options(fit)

    predict = commands.add_parser("predict", help="predict new samples with a fitted model")
    predict.add_argument("model", help="folder written by 'bayes-prsn fit' (or a model file)")
    predict.add_argument("data", help="CSV file with the model's predictor and covariate columns")
    predict.add_argument("--out", required=True, help="CSV file to write")
    predict.add_argument("--index-col", default=None, help="column holding sample labels")
    predict.add_argument(
        "--interval", action="store_true", help="add a predictive interval (needs a posterior)"
    )
    predict.add_argument("--prob", type=float, default=0.9)
    predict.add_argument("--quiet", action="store_true")

    demo = commands.add_parser("demo", help="fit built-in simulated data and write every output")
    demo.add_argument("--out", default="bayes_prsn_demo", help="output folder")
    demo.add_argument("--n-samples", type=int, default=500)
    _add_model_options(demo)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``bayes-prsn`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .persistence import ModelFileError

    try:
        if args.command == "fit":
            return run_fit(args)
        if args.command == "predict":
            return run_predict(args)
        return run_demo(args)
    except KeyboardInterrupt:
        print("bayes-prsn: interrupted; nothing was saved from this step.", file=sys.stderr)
        return 130
    except (CommandError, ModelFileError, ValueError, TypeError) as err:
        message = " ".join(str(err).split())
        print(f"bayes-prsn: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
