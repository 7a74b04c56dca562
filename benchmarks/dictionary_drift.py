"""How the dictionary Q and the codes share the scale of the models, by fit length.

Every sample's deviation is its code times Q, so ``Z Q`` is unchanged when the
codes shrink by a factor and Q grows by it. Q's prior, N(0, 1), counts once;
the codes' prior and the distance matching count once per sample. A long
fit of many samples can therefore lower those per-sample penalties by
drifting along this valley, and they then smooth less than at the 2,000
samples where a minibatch fit's smoothing is chosen. For one data set the
script fits with default settings (``max_steps``, ``batch_size`` and the
dictionary's prior weight as given) and reports Q's row norms, the spread of
the codes and of the encoder's output, and the theta-MSE (coefficients, no
intercepts, original units) of ``coef_``, of the encoder's output alone and
of each sample's own MAP code:

    python benchmarks/dictionary_drift.py --generator issue3 --n-samples 100000 --seed 100
    python benchmarks/dictionary_drift.py --generator issue3 --n-samples 100000 --seed 100 \
        --max-steps 9000 --dictionary-weight 50
    python benchmarks/dictionary_drift.py --generator scale --n-samples 100000 --seed 0

``issue3`` is ``make_small_low_rank`` with a quarter more samples drawn and
the first ``--n-samples`` fitted (as in ``posterior.py``); ``scale`` is
``make_low_rank`` with p = 20 (as in ``scale.py``). ``--dictionary-weight W``
multiplies Q's log prior by ``W`` in the minibatch model (the final fit
above 20,000 samples; the smoothing is still chosen on the subset with
weight 1): it wraps the model that ``bayes_prsn.svi`` fits minibatches
with, inside this process only. Results: ``results/dictionary_drift.json``
(appended).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from posterior import make_data

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _weighted_dictionary(weight: float) -> None:
    """Q's log prior times ``weight`` in the minibatch model (the fits above 20,000 samples)."""
    from bayes_prsn import svi

    original = svi.personalized_regression_minibatch

    def weighted(*args, **kwargs):
        with _scale_sites({"dictionary": weight}):
            return original(*args, **kwargs)

    svi.personalized_regression_minibatch = weighted


def _scale_sites(weights: dict):
    """A handler multiplying the log density of the named sites."""
    import numpyro

    class ScaleSites(numpyro.primitives.Messenger):
        def process_message(self, msg):
            if msg["type"] == "sample" and msg["name"] in weights:
                msg["scale"] = weights[msg["name"]] * (msg["scale"] or 1.0)

    return ScaleSites()


def _data(generator: str, n_samples: int, seed: int):
    from bayes_prsn import simulate

    if generator == "scale":
        return simulate.make_low_rank(n_samples=n_samples, n_features=20, random_state=seed)
    return make_data("issue3", n_samples, seed)


def _batch_size(text: str):
    """``auto``, ``none`` (full batch) or a number of samples per step."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    return int(text)


def run(args) -> dict:
    from bayes_prsn import PersonalizedRegression
    from bayes_prsn.predict import encoder_output

    data = _data(args.generator, args.n_samples, args.seed)
    n = args.n_samples
    cov = data.covariates.iloc[:n]
    estimator = PersonalizedRegression(
        random_state=args.seed, max_steps=args.max_steps, batch_size=args.batch_size
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(data.X[:n], data.y[:n], covariates=cov)
    seconds = time.perf_counter() - start
    state, truth = estimator.fit_state_, data.coef[:n]
    params = state.params
    encoded = encoder_output(params.encoder_weights, state.encoded)

    def theta_mse(codes):
        coef, _ = state.to_original_units(params.offset + codes @ params.dictionary)
        return float(np.mean((coef - truth) ** 2))

    return {
        "generator": args.generator,
        "n_samples": n,
        "seed": args.seed,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "dictionary_weight": args.dictionary_weight,
        "noise_scale": float(state.settings["noise_scale"]),
        "steps": int(state.n_steps),
        "fit_seconds": round(seconds, 1),
        "q_row_norms": np.linalg.norm(params.dictionary, axis=1).round(3).tolist(),
        "encoder_output_sd": encoded.std(axis=0).round(4).tolist(),
        "residual_code_sd": (params.embedding - encoded).std(axis=0).round(4).tolist(),
        "theta_mse_coef": float(np.mean((estimator.coef_ - truth) ** 2)),
        "theta_mse_encoder_output": theta_mse(encoded),
        "theta_mse_own_code": theta_mse(params.embedding),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="issue3", choices=["issue3", "scale"])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--batch-size", default="auto", type=_batch_size, help="auto, none or k")
    parser.add_argument("--dictionary-weight", type=float, default=1.0)
    parser.add_argument("--out", default=str(RESULTS / "dictionary_drift.json"))
    args = parser.parse_args()
    if args.dictionary_weight != 1.0:
        _weighted_dictionary(args.dictionary_weight)
    row = run(args)
    print(json.dumps(row))
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps([*rows, row], indent=1) + "\n")


if __name__ == "__main__":
    main()
