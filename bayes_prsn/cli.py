"""The ``bayes-prsn`` command line: fit, predict and a demo on simulated data.

::

    bayes-prsn fit data.csv --target y --covariates age,tissue --out fit_dir
    bayes-prsn fit data.csv --target y --predictors a,b,c --covariates age --posterior laplace \\
        --out fit_dir
    bayes-prsn predict fit_dir new.csv --out predictions.csv
    bayes-prsn demo --out demo_dir

Every model option takes its default from :data:`bayes_prsn.defaults.DEFAULTS`,
the estimators' own defaults, so a shell and Python give the same model.
Every argument is checked before any work starts, and a command that fails
leaves no output folder or file behind. Exit status: 0 on success, 1 when
the data or a file is wrong (a one-line message says what and what to do),
2 for a wrong command line, 130 when interrupted with Ctrl-C.

This module imports only the standard library at start-up (``--help`` and
``--version`` do not start JAX); the rest is imported when a command runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import warnings
from pathlib import Path

from .defaults import DEFAULTS, FAMILY_NAMES, POSTERIOR_DEFAULTS

__all__ = ["main", "build_parser"]

MODEL_FILE = "model.bprsn"


class CommandError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


# ------------------------------------------------------------ argument types
def _integer(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}; got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _auto_or_integer(low: int):
    """``--n-fits`` (low 1) and ``--refits`` (low 0): ``auto`` or a whole number >= low."""
    return lambda text: "auto" if text == "auto" else _integer(low)(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number; got {text}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (e.g. 0.9); got {text}")
    return value


# ------------------------------------------------------------------ the data
def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise CommandError("an empty list of column names was given.")
    return names


def read_table(path, *, index_col=None):
    """Read a CSV file with errors a shell user understands; ``index_col`` names the labels."""
    return with_labels(read_csv(path), index_col, path)


def read_csv(path):
    """The rows of a CSV file, unindexed, or a :class:`CommandError` saying what is wrong."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise CommandError(f"{path}: no such file.")
    if path.is_dir():
        raise CommandError(f"{path} is a folder; give a CSV file.")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CommandError(f"{path} is empty; it needs a header line and rows of data.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CommandError(f"{path} cannot be read as CSV: {first}") from None
    except OSError as err:
        raise CommandError(f"{path} cannot be read: {err.strerror or err}") from None
    if frame.shape[0] == 0:
        raise CommandError(f"{path} has a header but no rows of data.")
    return frame


def with_labels(frame, index_col, path):
    """``frame`` indexed by its ``index_col`` column (or by a pandas-written first column)."""
    if index_col is not None:
        if index_col not in frame.columns:
            raise CommandError(
                f"{path} has no column {index_col!r} (from --index-col); its columns are "
                f"{list(map(str, frame.columns))}."
            )
        frame = frame.set_index(index_col)
    elif str(frame.columns[0]).startswith("Unnamed: 0"):
        # A CSV written by pandas with its index: use that column as sample labels.
        frame = frame.set_index(frame.columns[0])
        frame.index.name = None
    return frame


def _check_columns(frame, names, option: str, path) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise CommandError(
            f"{path} has no column(s) {missing} (from {option}); its columns are "
            f"{list(map(str, frame.columns))}."
        )


def _label_columns(frame) -> list[str]:
    """Text columns with a different value in every row: sample labels, not data."""
    import pandas as pd

    found = []
    if len(frame) < 10:  # in a handful of rows any text column looks unique
        return found
    for name in frame.columns:
        column = frame[name]
        text = pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
        if text and column.notna().all() and column.nunique() == len(frame):
            found.append(str(name))
    return found


def _sample_columns(args) -> dict:
    """``{fit argument: column}`` of the columns given by --exposure, --trials, --weights."""
    named = {
        "exposure": getattr(args, "exposure", None),
        "trials": getattr(args, "trials", None),
        "sample_weight": getattr(args, "weights", None),
    }
    return {name: column for name, column in named.items() if column}


def _choose_columns(frame, args) -> tuple[list, list]:
    """Predictor and covariate columns; the one omitted is every other column."""
    import pandas as pd

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
    special = _sample_columns(args)
    _check_columns(frame, list(special.values()), "--exposure/--trials/--weights", path)
    others = [c for c in frame.columns if c != args.target and c not in special.values()]
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
    for option, column in special.items():
        if column in predictors or column in covariates or column == args.target:
            raise CommandError(
                f"the {option} column {column!r} cannot also be the target, a predictor or "
                "a covariate."
            )
    labels = [c for c in _label_columns(frame) if c in predictors or c in covariates]
    if labels:
        raise CommandError(
            f"column {labels[0]!r} has a different text value in every row, like sample "
            f"labels (IDs); pass --index-col {labels[0]} to use it as the samples' labels "
            "(a covariate needs values that samples share)."
        )
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
    target = frame[args.target]
    if not pd.api.types.is_numeric_dtype(target) and args.family != "bernoulli":
        raise CommandError(
            f"target column {args.target!r} is not numeric (values such as "
            f"{target.dropna().astype(str).unique()[:3].tolist()}); give numbers, or use "
            "--family bernoulli for two class labels."
        )
    if target.isna().any():
        rows = [str(label) for label in target.index[target.isna()][:5]]
        raise CommandError(
            f"target column {args.target!r} is missing in {int(target.isna().sum())} of "
            f"{len(target)} rows (rows {rows}); remove those rows first."
        )
    return predictors, covariates


# ---------------------------------------------------------------- outputs
class _Output:
    """An output folder or file that is removed again when the command fails."""

    def __init__(self, path: Path, *, folder: bool):
        self.path, self.folder = Path(path), folder
        if self.path.exists() and self.path.is_dir() != folder:
            kind = "a file" if folder else "a folder"
            raise CommandError(f"--out {self.path} is {kind}; give another path.")
        self.created = not self.path.exists()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None and self.created and self.path.exists():
            if self.folder:
                shutil.rmtree(self.path, ignore_errors=True)
            else:
                self.path.unlink(missing_ok=True)


def _estimator(args):
    from . import PersonalizedClassifier, PersonalizedRegression

    settings = {
        "rank": args.rank,
        "n_neighbors": args.n_neighbors,
        "gamma": args.gamma,
        "max_steps": args.max_steps,
        "random_state": args.random_state,
        "progress_bar": not args.quiet,
        "n_fits": args.n_fits,
    }
    if args.family == "bernoulli":
        return PersonalizedClassifier(**settings)
    return PersonalizedRegression(family=args.family, df=args.df, **settings)


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def _report_warnings(caught) -> None:
    for warning in caught:
        message = " ".join(str(warning.message).split())
        print(f"bayes-prsn: warning: {message}", file=sys.stderr)


def _pooled(args, estimator) -> str:
    """How the posterior about to be drawn is pooled, for the progress message."""
    from .pooling import auto_refits

    refits = auto_refits(estimator.fit_state_) if args.refits == "auto" else args.refits
    auto = " (--refits auto; 0 is faster)" if args.refits == "auto" else ""
    return f", pooled with {refits} other fits{auto}" if refits else ""


def run_fit(args, frame=None) -> int:
    fit_and_write(args, frame)
    return 0


def fit_and_write(args, frame=None):
    """``bayes-prsn fit``: fit, optionally sample, write every output; returns the estimator."""
    if getattr(args, "refits", "auto") not in (0, "auto") and not args.posterior:
        raise CommandError("--refits pools posteriors: add --posterior nuts|laplace|vi.")
    output = _Output(args.out, folder=True)
    if frame is None:
        frame = read_table(args.data, index_col=args.index_col)
    predictors, covariates = _choose_columns(frame, args)
    from . import ConvergenceWarning

    estimator = _estimator(args)
    _say(
        args,
        f"fitting {type(estimator).__name__} on {frame.shape[0]} samples: predictors "
        f"{predictors}, covariates {covariates}",
    )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("always", UserWarning)
        estimator.fit(
            frame[predictors],
            frame[args.target],
            covariates=frame[covariates],
            **{name: frame[column] for name, column in _sample_columns(args).items()},
        )
        seconds = time.perf_counter() - start
        if args.posterior:
            _say(args, f"sampling the posterior ({args.posterior}{_pooled(args, estimator)})")
            options = {"random_state": args.random_state}
            if args.num_samples is not None:
                options["num_samples"] = args.num_samples
            if args.posterior == "nuts":
                options.update(num_warmup=args.num_warmup, num_chains=args.num_chains)
            estimator.sample_posterior(args.posterior, refits=args.refits, **options)
    _report_warnings(caught)
    with output as out:
        summary = _write_fit(estimator, out, args, seconds)
    print(summary)
    print(f"wrote {sorted(p.name for p in out.iterdir())} to {out}/")
    return estimator


def _write_fit(estimator, out: Path, args, seconds: float) -> str:
    from . import analysis, arviz_compat
    from .report import coefficient_table, summary_text, write_plots
    from .state import has_posterior

    out.mkdir(parents=True, exist_ok=True)
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
    return summary


def run_predict(args) -> int:
    import pandas as pd

    from . import load
    from .state import fitted_state, has_posterior

    output = _Output(args.out, folder=False)
    estimator = load(args.model)
    state = fitted_state(estimator)
    interval = args.interval and has_posterior(estimator)
    if args.interval and not interval:
        raise CommandError(
            "--interval needs a posterior: fit with --posterior nuts|laplace|vi first."
        )
    frame = read_csv(args.data)
    index_col = args.index_col
    if index_col is None and state.sample_index_name in frame.columns:
        index_col = state.sample_index_name  # the fit's --index-col, when the file has it
    frame = with_labels(frame, index_col, args.data)
    predictors = [str(name) for name in state.feature_labels]
    covariates = list(estimator.covariate_names_)
    _check_columns(frame, predictors, "the fitted model's predictors", args.data)
    _check_columns(frame, covariates, "the fitted model's covariates", args.data)
    bad = [c for c in predictors if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise CommandError(f"predictor column(s) {bad} in {args.data} are not numeric.")
    X, U = frame[predictors], frame[covariates]
    exposure = None
    if args.exposure is not None:
        _check_columns(frame, [args.exposure], "--exposure", args.data)
        exposure = frame[args.exposure]
    table = pd.DataFrame(index=frame.index)
    percent = f"{100 * args.prob:g}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        if estimator.family_ == "bernoulli":
            name = "probability"
            if interval:
                proba, lower, upper = estimator.predict_proba(
                    X, U, return_interval=True, prob=args.prob
                )
                table[name] = proba[:, 1]
            else:
                table[name] = estimator.predict_proba(X, U)[:, 1]
        else:
            name = "prediction"
            if interval:
                table[name], lower, upper = estimator.predict(
                    X, U, exposure=exposure, return_interval=True, prob=args.prob
                )
            else:
                table[name] = estimator.predict(X, U, exposure=exposure)
        if interval:
            table[f"{name}_lower{percent}"], table[f"{name}_upper{percent}"] = lower, upper
        if estimator.family_ == "bernoulli":
            table["label"] = estimator.classes_[(table[name] > 0.5).astype(int).to_numpy()]
        coef = estimator.predict_coef(U)
        for j, predictor in enumerate(predictors):
            table[f"coef_{predictor}"] = coef[:, j]
        if estimator.fit_intercept:
            table["intercept"] = estimator.predict_intercept(U)
    # The same warning (an unseen level) comes once from each call above: say it once.
    _report_warnings({str(w.message): w for w in caught}.values())
    with output as out:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out)
    _say(args, f"wrote predictions for {len(table)} samples to {out}")
    return 0


def run_demo(args) -> int:
    import numpy as np
    import pandas as pd

    from . import simulate

    output = _Output(args.out, folder=True)
    if args.random_state is None:
        args.random_state = 0  # the demo is reproducible: seed 0 for its data and its fit
    seed = args.random_state
    data = simulate.make_low_rank(
        n_samples=args.n_samples, n_features=3, n_noise_covariates=1, random_state=seed
    )
    frame = pd.DataFrame(data.X, columns=[f"x{j}" for j in range(data.X.shape[1])])
    frame = pd.concat([frame, data.covariates], axis=1)
    frame.insert(0, "y", data.y)
    frame.index = pd.Index([f"sample{i}" for i in range(len(frame))])
    truth = pd.DataFrame(data.coef, columns=[f"x{j}" for j in range(data.X.shape[1])])
    truth.index = frame.index
    with output as out:
        out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out / "data.csv")
        truth.to_csv(out / "true_coefficients.csv")
        _say(
            args,
            f"demo: {args.n_samples} simulated samples (seed {seed}) with known per-sample "
            f"coefficients (data.csv, true_coefficients.csv in {out}/)",
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
            f"demo: theta-MSE of the per-sample models {mse:.4f} against {population:.4f} for "
            "one population model (truth in true_coefficients.csv)"
        )
        with open(out / "summary.txt", "a") as handle:
            handle.write("\n" + message + "\n")
    print(message)
    return 0


# ------------------------------------------------------------------ parser
def _add_family_options(model) -> None:
    """--df, --exposure, --trials and --weights."""
    model.add_argument(
        "--df",
        type=_positive,
        default=DEFAULTS["df"],
        help="degrees of freedom of the student_t family (default: learned)",
    )
    model.add_argument(
        "--exposure",
        metavar="COLUMN",
        help="column of each sample's exposure (poisson, negative_binomial, gamma): the mean "
        "is exposure times the rate, as with an offset log(exposure)",
    )
    model.add_argument(
        "--trials", metavar="COLUMN", help="column of each sample's trials (binomial)"
    )
    model.add_argument("--weights", metavar="COLUMN", help="column of each sample's weight (>= 0)")


def _add_model_options(parser) -> None:
    model = parser.add_argument_group("model (defaults are the estimators' own)")
    model.add_argument(
        "--family",
        choices=FAMILY_NAMES,
        default=DEFAULTS["family"],
        help="likelihood: gaussian or student_t (robust) for real values, bernoulli (0/1) or "
        "binomial (successes out of --trials), poisson or negative_binomial (counts, "
        "overdispersed), gamma (positive values); see the README's table "
        "(default: %(default)s)",
    )
    _add_family_options(model)
    model.add_argument(
        "--rank",
        type=_integer(1),
        default=DEFAULTS["rank"],
        help="rank of the per-sample codes: how many directions the models vary in "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--n-neighbors",
        type=_integer(1),
        default=DEFAULTS["n_neighbors"],
        help="neighbours per sample in the covariate graph (default: %(default)s)",
    )
    model.add_argument(
        "--gamma",
        type=_positive,
        default=DEFAULTS["gamma"],
        help="strength of the distance-matching potential (default: %(default)s)",
    )
    model.add_argument(
        "--max-steps",
        type=_integer(1),
        default=DEFAULTS["max_steps"],
        help="step cap of each optimisation (default: %(default)s)",
    )
    model.add_argument(
        "--random-state",
        type=_integer(0),
        default=DEFAULTS["random_state"],
        help="seed; give one for reproducible results (default: none, a new seed each run; "
        "0 for the demo)",
    )
    model.add_argument(
        "--n-fits",
        type=_auto_or_integer(1),
        default=DEFAULTS["n_fits"],
        help="fits averaged into the coefficients, each with its own held-out split (auto: 4 from "
        "1,000 (count, 0/1) or 5,000 (gaussian) to 20,000 samples, else 1; default: %(default)s)",
    )
    _add_posterior_options(parser)
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars or messages (the summary is printed)"
    )


def _add_posterior_options(parser) -> None:
    posterior = parser.add_argument_group("posterior (credible intervals)")
    posterior.add_argument(
        "--posterior",
        choices=("nuts", "laplace", "vi"),
        default=None,
        help="also sample the posterior for credible intervals (default: MAP only)",
    )
    posterior.add_argument(
        "--num-samples",
        type=_integer(1),
        default=POSTERIOR_DEFAULTS["num_samples"],
        help="posterior draws (default: 2000 per chain for nuts, 1000 for laplace and vi)",
    )
    posterior.add_argument(
        "--num-warmup",
        type=_integer(1),
        default=POSTERIOR_DEFAULTS["num_warmup"],
        help="NUTS warm-up iterations per chain (default: %(default)s)",
    )
    posterior.add_argument(
        "--num-chains",
        type=_integer(1),
        default=POSTERIOR_DEFAULTS["num_chains"],
        help="NUTS chains (default: %(default)s)",
    )
    posterior.add_argument(
        "--refits",
        type=_auto_or_integer(0),
        default="auto",
        help="pool the posterior with that of this many other fits with other random states "
        "(better calibrated intervals from 1,000 samples on; auto: the fits that --n-fits "
        "averaged, else 3 refits from 1,000 (count, 0/1) or 5,000 (gaussian) to 20,000 samples, "
        "else 0; a fit not averaged costs a fit; default: %(default)s)",
    )
    posterior.add_argument(
        "--prob",
        type=_probability,
        default=0.9,
        help="probability of the credible intervals in coefficients.csv (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(
        prog="bayes-prsn",
        description="Personalized regression: one model per sample, with uncertainty.",
    )
    parser.add_argument("--version", action="version", version=f"bayes_prsn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit one model per sample to a CSV file")
    fit.add_argument("data", help="CSV file, one row per sample")
    fit.add_argument("--target", required=True, help="column of the response")
    fit.add_argument("--predictors", help="comma-separated predictor columns (default: the rest)")
    fit.add_argument("--covariates", help="comma-separated covariate columns (default: the rest)")
    fit.add_argument(
        "--index-col",
        default=None,
        help="column of sample labels (IDs), used as row labels of the outputs and "
        "remembered by predict (default: none; an unnamed first column is used)",
    )
    fit.add_argument("--out", required=True, help="output folder")
    _add_model_options(fit)

    predict = commands.add_parser("predict", help="predict new samples with a fitted model")
    predict.add_argument("model", help="folder written by 'bayes-prsn fit' (or a model file)")
    predict.add_argument("data", help="CSV file with the model's predictor and covariate columns")
    predict.add_argument("--out", required=True, help="CSV file to write")
    predict.add_argument(
        "--exposure",
        metavar="COLUMN",
        help="column of the new samples' exposure (default: predictions per unit of exposure)",
    )
    predict.add_argument(
        "--index-col",
        default=None,
        help="column of sample labels (default: the fit's --index-col when the file has it)",
    )
    predict.add_argument(
        "--interval", action="store_true", help="add a predictive interval (needs a posterior)"
    )
    predict.add_argument(
        "--prob",
        type=_probability,
        default=0.9,
        help="probability of the predictive interval (default: %(default)s)",
    )
    predict.add_argument("--quiet", action="store_true", help="no messages")

    demo = commands.add_parser("demo", help="fit built-in simulated data and write every output")
    demo.add_argument(
        "--out", default="bayes_prsn_demo", help="output folder (default: %(default)s)"
    )
    demo.add_argument(
        "--n-samples",
        type=_integer(20),
        default=500,
        help="number of simulated samples (default: %(default)s)",
    )
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
