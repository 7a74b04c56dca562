"""Tokyo mortality: a Poisson rate model with an exposure, against the Poisson GLM and GWR.

262 municipalities (``examples/data/tokyo_mortality.csv``): deaths aged
25-64 (``db2564``) with their expected number (``eb2564``) as the exposure,
predictors OCC_TEC, OWNH, POP65 and UNEMP, the centroids' coordinates as
the covariates. For every method, the same 5 folds (shuffled, seed 0):

* held-out Poisson deviance (summed over each fold's samples, added up
  over the folds; lower is better);
* in-sample deviance explained, ``1 - D / D_0`` with ``D_0`` the deviance of
  the intercept-only model with the same exposure (GWR4's published fit
  with the offset: 0.676; the global Poisson model 0.595).

Methods: the Poisson GLM (``bayes_prsn``'s population GLM, no penalty
on the intercept, ridge 1 on the standardised predictors), bayes_prsn
with ``family="poisson"`` and ``family="negative_binomial"`` (defaults,
``exposure=eb2564``), and mgwr's Poisson GWR with the offset (bisquare
adaptive kernel, bandwidth chosen by AICc on each training fold) when the
Python of ``BAYES_PRSN_GWR_PYTHON`` has mgwr.

    python benchmarks/tokyo.py            # table on stdout, JSON in benchmarks/results/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bayes_prsn.models import family

from bayes_prsn import PersonalizedRegression

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "tokyo_mortality.csv"
RESULTS = Path(__file__).resolve().parent / "results"
PREDICTORS = ["OCC_TEC", "OWNH", "POP65", "UNEMP"]
COVARIATES = ["X_CENTROID", "Y_CENTROID"]


def deviance(y, mu) -> float:
    """Summed Poisson deviance."""
    ratio = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return float(2.0 * np.sum(ratio - (y - mu)))


def null_deviance(y, exposure) -> float:
    """Deviance of the intercept-only model with the exposure."""
    return deviance(y, exposure * y.sum() / exposure.sum())


def folds(n: int, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[j::k]) for j in range(k)]


def glm(train, test, frame):
    """Poisson GLM with the offset; returns (held-out means, in-sample means)."""
    from bayes_prsn.population import fit_population_glm

    X = frame[PREDICTORS].to_numpy()
    centre, scale = X[train].mean(0), X[train].std(0)

    def design(rows):
        return np.column_stack([(X[rows] - centre) / scale, np.ones(len(rows))])

    y, log_e = frame["db2564"].to_numpy(), np.log(frame["eb2564"].to_numpy())
    beta = fit_population_glm(
        design(train), y[train], "poisson", penalty=np.r_[np.ones(4), 0.0], eta_offset=log_e[train]
    )
    return np.exp(design(test) @ beta + log_e[test]), np.exp(design(train) @ beta + log_e[train])


def personalized(name):
    def fit(train, test, frame):
        estimator = PersonalizedRegression(family=name, random_state=0)
        rows = frame.iloc[train]
        estimator.fit(rows[PREDICTORS], rows["db2564"], rows[COVARIATES], exposure=rows["eb2564"])
        new = frame.iloc[test]
        held_out = estimator.predict(new[PREDICTORS], new[COVARIATES], exposure=new["eb2564"])
        fitted = estimator.predict(rows[PREDICTORS], rows[COVARIATES], exposure=rows["eb2564"])
        return held_out, fitted

    return fit


GWR_SCRIPT = """
import json, sys
import numpy as np
from mgwr.gwr import GWR
from mgwr.sel_bw import Sel_BW
from spglm.family import Poisson
a = np.load(sys.argv[1])
X, y, off, coords = a["X"], a["y"], a["offset"], a["coords"]
train, test = a["train"], a["test"]
centre, scale = X[train].mean(0), X[train].std(0)
Z = (X - centre) / scale
bw = Sel_BW(coords[train], y[train, None], Z[train], family=Poisson(), offset=off[train, None],
            kernel="bisquare", fixed=False).search(criterion="AICc")
model = GWR(coords[train], y[train, None], Z[train], bw, family=Poisson(),
            offset=off[train, None], kernel="bisquare", fixed=False)
fitted = model.fit()
pred = model.predict(coords[test], Z[test])
params_test = np.asarray(pred.params)
eta_test = params_test[:, 0] + np.sum(Z[test] * params_test[:, 1:], axis=1)
params = np.asarray(fitted.params)
eta_train = params[:, 0] + np.sum(Z[train] * params[:, 1:], axis=1)
print(json.dumps({"bandwidth": float(bw),
                  "held_out": np.exp(eta_test + np.log(off[test])).tolist(),
                  "fitted": np.exp(eta_train + np.log(off[train])).tolist()}))
"""


def gwr(python: str):
    def fit(train, test, frame):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fold.npz"
            np.savez(
                path,
                X=frame[PREDICTORS].to_numpy(),
                y=frame["db2564"].to_numpy(float),
                offset=frame["eb2564"].to_numpy(float),
                coords=frame[COVARIATES].to_numpy(),
                train=train,
                test=test,
            )
            out = subprocess.run(
                [python, "-c", GWR_SCRIPT, str(path)], capture_output=True, text=True, check=True
            )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        return np.asarray(result["held_out"]), np.asarray(result["fitted"])

    return fit


def run(methods: dict, frame: pd.DataFrame, fold_seed: int = 0) -> list[dict]:
    y, exposure = frame["db2564"].to_numpy(float), frame["eb2564"].to_numpy(float)
    n = len(frame)
    rows = []
    for name, fit in methods.items():
        held_out, explained, seconds = 0.0, [], []
        for test in folds(n, seed=fold_seed):
            train = np.setdiff1d(np.arange(n), test)
            start = time.perf_counter()
            mu_test, mu_train = fit(train, test, frame)
            seconds.append(time.perf_counter() - start)
            held_out += deviance(y[test], mu_test)
            explained.append(
                1 - deviance(y[train], mu_train) / null_deviance(y[train], exposure[train])
            )
        everything = np.arange(n)
        _, mu_all = fit(everything, everything[:1], frame)
        row = {
            "method": name,
            "held_out_deviance": held_out,
            "deviance_explained_in_sample": 1 - deviance(y, mu_all) / null_deviance(y, exposure),
            "deviance_explained_folds_median": float(np.median(explained)),
            "fit_seconds_median": float(np.median(seconds)),
        }
        rows.append(row)
        print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| method | held-out deviance (5 folds, summed) | deviance explained, all 262 | fit s |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['held_out_deviance']:.1f} "
            f"| {r['deviance_explained_in_sample']:.3f} | {r['fit_seconds_median']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "tokyo.json"))
    parser.add_argument(
        "--fold-seed", type=int, default=0, help="seed of the 5 shuffled folds (default 0)"
    )
    args = parser.parse_args(argv)
    frame = pd.read_csv(DATA)
    family("poisson")  # the family exists (fails early otherwise)
    methods = {
        "poisson GLM": glm,
        "bayes_prsn poisson": personalized("poisson"),
        "bayes_prsn negative_binomial": personalized("negative_binomial"),
    }
    python = os.environ.get("BAYES_PRSN_GWR_PYTHON")
    if python:
        methods["GWR (mgwr, Poisson, offset)"] = gwr(python)
    rows = run(methods, frame, args.fold_seed)
    print(table(rows))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "gwr4_published": 0.676}, indent=2))


if __name__ == "__main__":
    main()
