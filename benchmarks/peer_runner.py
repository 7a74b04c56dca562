"""Fit one method on one prepared dataset, in its own process (and virtual environment).

Called by ``peers.py``; runs under bayes_prsn's Python or a peer's, so it
imports only numpy and the method it fits. Reads ``DATA.npz``, fits
``--repeats`` times, and prints one JSON line: fit seconds of every repeat,
peak resident memory of the process, and the per-sample coefficients,
intercepts and predictions (training and held-out) of the last fit.

    python peer_runner.py METHOD DATA.npz --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

import numpy as np


def _fit_bayes_prsn(data, family):
    import pandas as pd

    from bayes_prsn import PersonalizedClassifier, PersonalizedRegression

    train = pd.DataFrame(data["C_train"], columns=[str(c) for c in data["covariate_names"]])
    test = pd.DataFrame(data["C_test"], columns=train.columns)
    for name in data["categorical"]:
        train[str(name)] = train[str(name)].astype(int).astype("category")
        test[str(name)] = pd.Categorical(
            test[str(name)].astype(int), categories=train[str(name)].cat.categories
        )
    if family == "bernoulli":
        est = PersonalizedClassifier(random_state=0)
    else:
        est = PersonalizedRegression(family=family, random_state=0)
    inputs = {k: data[f"{k}_train"] for k in ("exposure", "trials") if f"{k}_train" in data}
    est.fit(data["X_train"], data["y_train"], covariates=train, **inputs)
    return {
        "coef_train": est.coef_,
        "intercept_train": est.intercept_,
        "coef_test": est.predict_coef(test),
        "intercept_test": est.predict_intercept(test),
    }


def _fit_contextualized(data, family):
    from contextualized.easy import ContextualizedClassifier, ContextualizedRegressor

    if family in ("poisson", "negative_binomial", "binomial", "gamma"):
        raise NotImplementedError(f"Contextualized has no {family} regression")
    # student_t data: its regressor (squared loss) is the peer.
    cls = ContextualizedClassifier if family == "bernoulli" else ContextualizedRegressor
    # ANCHORS.md: the default batch size 1 is about 25x slower.
    model = cls()
    C, X = data["C_train"].astype(np.float32), data["X_train"].astype(np.float32)
    y = data["y_train"].astype(np.float32)[:, None]
    model.fit(C, X, y, train_batch_size=32, es_patience=5)
    out = {}
    for part in ("train", "test"):
        betas, mus = model.predict_params(data[f"C_{part}"].astype(np.float32))
        out[f"coef_{part}"] = np.asarray(betas).reshape(len(data[f"C_{part}"]), -1)
        out[f"intercept_{part}"] = np.asarray(mus).reshape(-1)
    return out


def _fit_gwr(data, family):
    from mgwr.gwr import GWR
    from mgwr.sel_bw import Sel_BW
    from spglm.family import Binomial, Gaussian, Poisson

    if family in ("binomial", "gamma"):
        raise NotImplementedError(f"mgwr has no {family} family (binomial: 0/1 responses only)")
    # student_t data: gaussian GWR; negative_binomial counts: Poisson GWR with the offset.
    fam = {
        "gaussian": Gaussian(),
        "student_t": Gaussian(),
        "bernoulli": Binomial(),
        "poisson": Poisson(),
        "negative_binomial": Poisson(),
    }[family]
    coords = data["coords_train"]
    y = data["y_train"][:, None]
    X = data["X_train"]
    offset = {"offset": data["exposure_train"][:, None]} if "exposure_train" in data else {}
    bandwidth = Sel_BW(coords, y, X, family=fam, **offset).search()
    result = GWR(coords, y, X, bandwidth, family=fam, **offset).fit()
    out = {"coef_train": result.params[:, 1:], "intercept_train": result.params[:, 0]}
    if family in ("gaussian", "student_t"):
        # mgwr predicts new locations for the gaussian family only.
        model = GWR(coords, y, X, bandwidth, family=fam)
        predicted = model.predict(data["coords_test"], data["X_test"])
        out["coef_test"] = predicted.params[:, 1:]
        out["intercept_test"] = predicted.params[:, 0]
    return out


METHODS = {
    "bayes_prsn": _fit_bayes_prsn,
    "contextualized": _fit_contextualized,
    "gwr": _fit_gwr,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("data")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    with np.load(args.data, allow_pickle=False) as stored:
        data = dict(stored)
    family = str(data["family"])
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = METHODS[args.method](data, family)
        seconds.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    payload = {
        "seconds": seconds,
        "peak_mb": peak_mb,
        **{k: np.asarray(v, dtype=float).tolist() for k, v in out.items()},
    }
    sys.stdout.write("RESULT " + json.dumps(payload) + "\n")


if __name__ == "__main__":
    main()
