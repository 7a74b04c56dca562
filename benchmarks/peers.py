"""bayes_prsn against its peers, side by side in one run.

For every generator in :mod:`bayes_prsn.simulate` (training size = the
generator's default, plus 25% held-out samples) the script fits

* the population GLM (scikit-learn: least squares, logistic or Poisson
  regression without penalty, one model for everyone; for the student_t,
  negative_binomial, binomial and gamma generators ``bayes_prsn.population``'s
  GLM of that family with the exposure and trials, least squares for
  student_t),
* bayes_prsn with default settings,
* GWR (mgwr 2.2.1; covariates as coordinates, categorical ones one-hot;
  gaussian GWR on student_t data, Poisson GWR with the exposure as offset on
  negative_binomial data, none for binomial-with-trials and gamma),
* Contextualized (contextualized-ml 0.2.9; ``train_batch_size=32,
  es_patience=5`` as ANCHORS.md advises, otherwise defaults),

and reports theta-MSE (per-sample coefficients against the truth, in the
generator's units) on training and held-out samples, held-out predictive
error (MSE, log-loss or mean Poisson deviance), fit time (median over
``--repeats`` fresh processes, so start-up and JAX/torch compilation are
included) and the peak resident memory of the fitting process. Real data
sets follow (``real_data.py``: diabetes and Georgia in its two published
set-ups): 5-fold cross-validated test MSE of the standardised response with
``KFold(5, shuffle=True, random_state=--split-seed)``, against least squares
on the predictors and on every variable (predictors and covariates).

Every method runs in a subprocess through ``peer_runner.py``. The peers live
in their own virtual environments (ANCHORS.md has the recipe); give their
Python with ``--contextualized-python`` / ``--gwr-python`` or the
environment variables ``BAYES_PRSN_CONTEXTUALIZED_PYTHON`` /
``BAYES_PRSN_GWR_PYTHON``. A peer that is not found is skipped, and the
script says so.

    python benchmarks/peers.py --repeats 3
    python benchmarks/peers.py --datasets toy,null --repeats 1 --no-diabetes
    python benchmarks/peers.py --real-only --split-seed 1 --output results/real_1.json

Results: a markdown table on stdout and ``results/peers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_data  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNNER = HERE / "peer_runner.py"
HELD_OUT = 0.2
PEER_ENV = {
    "contextualized": "BAYES_PRSN_CONTEXTUALIZED_PYTHON",
    "gwr": "BAYES_PRSN_GWR_PYTHON",
}


def _find_python(method: str, flag: str | None) -> str | None:
    if method == "bayes_prsn":
        return sys.executable
    path = flag or os.environ.get(PEER_ENV[method])
    if not path:
        return None
    check = subprocess.run(
        [path, "-c", "import contextualized" if method == "contextualized" else "import mgwr"],
        capture_output=True,
    )
    return path if check.returncode == 0 else None


def _coordinates(frame) -> tuple[np.ndarray, list[str]]:
    """Covariates as numbers: numeric columns as they are, categorical ones one-hot."""
    import pandas as pd

    blocks, categorical = [], []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object:
            codes = pd.Categorical(column).codes
            blocks.append(np.eye(codes.max() + 1)[codes])
            categorical.append(name)
        else:
            blocks.append(column.to_numpy(float)[:, None])
    return np.column_stack(blocks), categorical


def _codes(frame) -> np.ndarray:
    """Covariates as one float column each (categorical ones by their level code)."""
    import pandas as pd

    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object:
            columns.append(pd.Categorical(column).codes.astype(float))
        else:
            columns.append(column.to_numpy(float))
    return np.column_stack(columns)


def _prepare(train, test, family: str, path: Path) -> None:
    coords_train, categorical = _coordinates(train.covariates)
    coords_test, _ = _coordinates(test.covariates)
    # Contextualized takes the context as numbers: numeric columns plus one-hot levels.
    np.savez(
        path,
        family=family,
        X_train=train.X,
        y_train=train.y,
        X_test=test.X,
        C_train=_codes(train.covariates),
        C_test=_codes(test.covariates),
        covariate_names=np.asarray(list(train.covariates.columns), dtype=str),
        categorical=np.asarray(categorical, dtype=str),
        coords_train=coords_train,
        coords_test=coords_test,
        **{
            f"{name}_{part}": getattr(data, name)
            for part, data in (("train", train), ("test", test))
            for name in ("exposure", "trials")
            if getattr(data, name) is not None
        },
    )


def _prepare_context(path: Path) -> None:
    """Contextualized gets one-hot levels (its encoder is a plain MLP on numbers)."""
    with np.load(path, allow_pickle=False) as stored:
        data = dict(stored)
    data["C_train"], data["C_test"] = data["coords_train"], data["coords_test"]
    np.savez(path.with_name(path.stem + "_context.npz"), **data)


def _data_file(path: Path, method: str) -> Path:
    return path.with_name(path.stem + "_context.npz") if method == "contextualized" else path


def _run(method: str, python: str, data: Path, repeats: int) -> dict:
    seconds, result = [], None
    for _ in range(repeats):
        out = subprocess.run(
            [python, str(RUNNER), method, str(data)], capture_output=True, text=True
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"error": tail[0][:200]}
        result = json.loads(lines[-1][len("RESULT ") :])
        seconds.extend(result["seconds"])
    result["seconds"] = seconds
    return result


def _link(X, coef, intercept):
    return np.sum(X * coef, axis=1) + intercept


def _population(train, test, family):
    from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor

    if family in ("student_t", "negative_binomial", "binomial", "gamma"):
        return _population_glm(train, test, family)
    start = time.perf_counter()
    if family == "gaussian":
        model = LinearRegression().fit(train.X, train.y)
    elif family == "bernoulli":
        model = LogisticRegression(C=np.inf, max_iter=1000).fit(train.X, train.y)
    else:
        model = PoissonRegressor(alpha=0.0, max_iter=1000).fit(train.X, train.y)
    seconds = time.perf_counter() - start
    coef = np.ravel(model.coef_)
    intercept = float(np.ravel(model.intercept_)[0])
    n_train, n_test = len(train.y), len(test.y)
    return {
        "seconds": [seconds],
        "peak_mb": None,
        "coef_train": np.tile(coef, (n_train, 1)),
        "intercept_train": np.full(n_train, intercept),
        "coef_test": np.tile(coef, (n_test, 1)),
        "intercept_test": np.full(n_test, intercept),
    }


def _population_glm(train, test, family):
    """The newer families' population GLM: ``bayes_prsn.population`` (same family, exposure
    and trials; student_t: least squares), unpenalised but for a ridge of 1e-8."""
    from bayes_prsn.population import fit_population_glm

    start = time.perf_counter()
    design = np.column_stack([train.X, np.ones(len(train.y))])
    extras = {}
    if train.exposure is not None:
        extras["eta_offset"] = np.log(train.exposure)
    if train.trials is not None:
        extras["trials"] = train.trials
    glm_family = "gaussian" if family == "student_t" else family
    beta = fit_population_glm(design, train.y, glm_family, penalty=1e-8, **extras)
    seconds = time.perf_counter() - start
    n_train, n_test = len(train.y), len(test.y)
    return {
        "seconds": [seconds],
        "peak_mb": None,
        "coef_train": np.tile(beta[:-1], (n_train, 1)),
        "intercept_train": np.full(n_train, beta[-1]),
        "coef_test": np.tile(beta[:-1], (n_test, 1)),
        "intercept_test": np.full(n_test, beta[-1]),
    }


def score(result: dict, train, test, family: str) -> dict:
    from bayes_prsn.models import family as family_of

    if "error" in result:
        return {"error": result["error"]}
    row = {
        "fit_seconds": float(np.median(result["seconds"])),
        "fit_seconds_all": [float(s) for s in result["seconds"]],
        "peak_mb": result["peak_mb"],
        "theta_mse_train": float(np.mean((np.asarray(result["coef_train"]) - train.coef) ** 2)),
    }
    if "coef_test" in result:
        coef, intercept = np.asarray(result["coef_test"]), np.asarray(result["intercept_test"])
        row["theta_mse_test"] = float(np.mean((coef - test.coef) ** 2))
        shift = 0.0 if test.exposure is None else np.log(test.exposure)
        aux = {} if test.trials is None else {"trials": test.trials}
        row["pred_error_test"] = family_of(family).predictive_loss(
            _link(test.X, coef, intercept) + shift, test.y, **aux
        )
    return row


def run_simulated(name: str, pythons: dict, repeats: int, seed: int, folder: Path) -> dict:
    from bayes_prsn import simulate

    generator = simulate.GENERATORS[name]
    n_train = generator.__defaults__[0]
    n_total = int(round(n_train / (1 - HELD_OUT)))
    data = generator(n_samples=n_total, random_state=1000 + seed)
    train = data.subset(np.arange(n_train))
    test = data.subset(np.arange(n_train, n_total))
    path = folder / f"{name}.npz"
    _prepare(train, test, data.family, path)
    _prepare_context(path)
    rows = {"population": score(_population(train, test, data.family), train, test, data.family)}
    for method, python in pythons.items():
        if python is None:
            rows[method] = {"error": "not installed (skipped)"}
            continue
        result = _run(method, python, _data_file(path, method), repeats)
        rows[method] = score(result, train, test, data.family)
        print(f"  {name:10s} {method:15s} {_short(rows[method])}", file=sys.stderr, flush=True)
    return {
        "dataset": name,
        "family": data.family,
        "n_train": n_train,
        "n_features": data.X.shape[1],
        **{m: r for m, r in rows.items()},
    }


def _short(row: dict) -> str:
    if "error" in row:
        return row["error"]
    return f"theta-MSE {row['theta_mse_train']:.4g}, {row['fit_seconds']:.1f} s"


def run_real(name: str, pythons: dict, folder: Path, georgia, split_seed: int = 0) -> dict:
    """5-fold CV test MSE (standardised response) on the real data set ``name``."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold

    from bayes_prsn.simulate import SimulatedData

    X, y, covariates, everything = real_data.load(name, georgia)
    errors: dict[str, list] = {"ols_all": [], "ols_predictors": [], **{m: [] for m in pythons}}
    folds = KFold(5, shuffle=True, random_state=split_seed).split(X)
    n_p = X.shape[1]

    def part(index):
        return SimulatedData(
            X[index],
            y[index],
            covariates.iloc[index].reset_index(drop=True),
            np.zeros((len(index), n_p)),
            np.zeros(len(index)),
            "gaussian",
            name,
        )

    for fold, (train_index, test_index) in enumerate(folds):
        train, test = part(train_index), part(test_index)
        ols = LinearRegression().fit(everything[train_index], y[train_index])
        errors["ols_all"].append(
            float(np.mean((ols.predict(everything[test_index]) - y[test_index]) ** 2))
        )
        ols_p = LinearRegression().fit(train.X, train.y)
        errors["ols_predictors"].append(float(np.mean((ols_p.predict(test.X) - test.y) ** 2)))
        path = folder / f"{name}_{fold}.npz"
        _prepare(train, test, "gaussian", path)
        _prepare_context(path)
        for method, python in pythons.items():
            if python is None:
                continue
            result = _run(method, python, _data_file(path, method), 1)
            if "error" in result:
                errors[method].append(float("nan"))
                continue
            eta = _link(test.X, np.asarray(result["coef_test"]), result["intercept_test"])
            errors[method].append(float(np.mean((eta - test.y) ** 2)))
        print(
            f"  {name} fold {fold}: "
            + ", ".join(f"{m} {v[-1]:.3f}" for m, v in errors.items() if v),
            file=sys.stderr,
            flush=True,
        )
    return {m: {"folds": v, "mean": float(np.mean(v)) if v else None} for m, v in errors.items()}


def _fmt(value, digits=4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}"


def table(rows: list[dict], methods: list[str]) -> str:
    lines = [
        "| dataset | n | method | theta-MSE train | theta-MSE held-out | pred. error held-out "
        "| fit s (median) | peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        best = {}
        for key in ("theta_mse_train", "theta_mse_test", "pred_error_test"):
            values = [row[m].get(key) for m in methods if row[m].get(key) is not None]
            best[key] = min(values) if values else None
        for method in methods:
            r = row[method]
            if "error" in r:
                cells = [r["error"]] + ["–"] * 4
            else:
                cells = []
                for key in ("theta_mse_train", "theta_mse_test", "pred_error_test"):
                    text = _fmt(r.get(key))
                    cells.append(f"**{text}**" if r.get(key) == best[key] else text)
                cells += [f"{r['fit_seconds']:.2f}", _fmt(r["peak_mb"], 4)]
            head = f"| {row['dataset']} | {row['n_train']} | {method} | "
            lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    from bayes_prsn import simulate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(simulate.GENERATORS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contextualized-python")
    parser.add_argument("--gwr-python")
    parser.add_argument(
        "--real",
        default=",".join(real_data.NAMES),
        help="real data sets, comma-separated (none: skip them)",
    )
    parser.add_argument("--no-diabetes", action="store_true", help="same as --real none")
    parser.add_argument("--real-only", action="store_true", help="skip the simulated data")
    parser.add_argument("--split-seed", type=int, default=0, help="KFold's random_state")
    parser.add_argument("--georgia-csv", help="libpysal's GData_utm.csv, if libpysal is not found")
    parser.add_argument("--output", default=str(RESULTS / "peers.json"))
    args = parser.parse_args(argv)
    pythons = {
        "bayes_prsn": _find_python("bayes_prsn", None),
        "gwr": _find_python("gwr", args.gwr_python),
        "contextualized": _find_python("contextualized", args.contextualized_python),
    }
    for method, python in pythons.items():
        if python is None:
            print(
                f"{method}: not found (set {PEER_ENV[method]} or --{method}-python to the Python "
                "of its virtual environment); skipped.",
                file=sys.stderr,
            )
    methods = ["population", *pythons]
    with tempfile.TemporaryDirectory() as folder:
        rows = [
            run_simulated(name, pythons, args.repeats, args.seed, Path(folder))
            for name in ([] if args.real_only else args.datasets.split(","))
        ]
        names = [] if args.no_diabetes or args.real == "none" else args.real.split(",")
        georgia = real_data.georgia_path(pythons["gwr"], args.georgia_csv)
        real = {
            name: run_real(name, pythons, Path(folder), georgia, args.split_seed) for name in names
        }
    if rows:
        print(table(rows, methods))
    for name, errors in real.items():
        print(f"\n| {name}, 5-fold CV test MSE | mean | folds |\n|---|---|---|")
        for method, value in errors.items():
            folds = ", ".join(f"{v:.3f}" for v in value["folds"])
            print(f"| {method} | {_fmt(value['mean'], 4)} | {folds} |")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(
        json.dumps(
            {
                "repeats": args.repeats,
                "seed": args.seed,
                "split_seed": args.split_seed,
                "rows": rows,
                "real": real,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
