"""How often a fit falls back to the population model, and what that costs, over random states.

From 1,000 samples on the smoothing is chosen on one random split, and the
population GLM is compared with the chosen per-sample candidate on it. This
script fits each data set with several ``random_state`` values (which draw
the split, the random pairs and the start) at default settings and reports,
per generator and size: how many fits fell back, how many kept the fallback's
strongly smoothed fit because it beat the population GLM on the held-out
samples (``validation_scores_["smoothed_fallback"]``), how many ran the K-fold
check of a split that favoured the population model (``validation_scores_
["confirmation"]``), the mean theta-MSE of ``coef_`` and intercepts against
the truth, its mean ratio to the population GLM's, and the median fit time.

``--tree PATH`` runs the same fits with another checkout first (``git
worktree add /tmp/before <commit>``; its ``bayes_prsn`` is imported through
``PYTHONPATH``) and prints both, with every fit whose result changed.

    python benchmarks/fallback.py
    python benchmarks/fallback.py --tree /tmp/before --label confirmation

Data seeds and random states are listed in ``SPECS`` (the tests use others).
Results: ``results/fallback_<label>.json`` (and ``..._baseline.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: generator, samples, data seeds, random states.
SPECS = (
    ("poisson", 2000, (1000, 1001, 1002, 1003), (0, 1, 2)),
    ("negative_binomial", 2000, (2001, 2002, 2003), (0, 1, 2, 11, 12)),
    ("binomial", 2000, (1000, 1001), (0, 1)),
    ("logistic", 2000, (1000,), (0, 1)),
    ("null", 1000, (5004, 5005), (0, 1)),
    # Weak heterogeneity at 1,000 samples (the smoothed fallback's check, 2026-12-06).
    ("poisson", 1000, tuple(range(2100, 2112)), (0,)),
)


def _data(generator: str, n_samples: int, seed: int):
    from bayes_prsn import simulate

    return simulate.GENERATORS[generator](n_samples=n_samples, random_state=seed)


def run(specs=SPECS) -> list[dict]:
    from bayes_prsn import PersonalizedRegression
    from bayes_prsn.smoothing import is_fallback

    rows = []
    for generator, n_samples, seeds, states in specs:
        for seed in seeds:
            data = _data(generator, n_samples, seed)
            truth = np.column_stack([data.coef, data.intercept])
            for state in states:
                est = PersonalizedRegression(family=data.family, random_state=state)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(data.X, data.y, data.covariates, **data.fit_inputs)
                seconds = time.perf_counter() - start
                fitted = np.column_stack([est.coef_, est.intercept_])
                population = np.append(est.population_coef_, est.population_intercept_)
                report = est.validation_scores_ or {}
                row = {
                    "generator": generator,
                    "n_samples": n_samples,
                    "seed": seed,
                    "random_state": state,
                    "fallback": bool(is_fallback(report or None)),
                    "checked": "confirmation" in report,
                    # The fallback's strongly smoothed fit beat the population GLM and was kept.
                    "smoothed_kept": bool(report.get("smoothed_fallback", {}).get("kept")),
                    "theta_mse": float(np.mean((fitted - truth) ** 2)),
                    "theta_mse_population": float(np.mean((population - truth) ** 2)),
                    "fit_seconds": seconds,
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| generator | N | fits | fell back | smoothed fit kept | checked on K folds "
        "| theta-MSE (mean) | ratio to the population GLM (mean) | fit s (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for generator, n_samples in dict.fromkeys((r["generator"], r["n_samples"]) for r in rows):
        group = [r for r in rows if (r["generator"], r["n_samples"]) == (generator, n_samples)]
        ratios = [r["theta_mse"] / r["theta_mse_population"] for r in group]
        kept = sum(r.get("smoothed_kept", False) for r in group)
        lines.append(
            f"| {generator} | {n_samples} | {len(group)} "
            f"| {sum(r['fallback'] for r in group)} | {kept} | {sum(r['checked'] for r in group)} "
            f"| {np.mean([r['theta_mse'] for r in group]):.4g} | {np.mean(ratios):.3f} "
            f"| {np.median([r['fit_seconds'] for r in group]):.1f} |"
        )
    return "\n".join(lines)


def changed(before: list[dict], after: list[dict]) -> list[str]:
    lines = []
    for old, new in zip(before, after, strict=True):
        if old["fallback"] != new["fallback"] or old["theta_mse"] != new["theta_mse"]:
            lines.append(
                f"- {new['generator']} seed {new['seed']} random_state {new['random_state']}: "
                f"fallback {old['fallback']} -> {new['fallback']}, theta-MSE "
                f"{old['theta_mse']:.4g} -> {new['theta_mse']:.4g} (population GLM "
                f"{new['theta_mse_population']:.4g})"
            )
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="another checkout to run first, as the baseline")
    parser.add_argument("--label", default="latest")
    parser.add_argument("--out", help="write this run's rows here (JSON) and stop")
    args = parser.parse_args(argv)
    if args.out:
        Path(args.out).write_text(json.dumps(run(), indent=1))
        return
    RESULTS.mkdir(exist_ok=True)
    baseline = None
    if args.tree:
        path = RESULTS / f"fallback_{args.label}_baseline.json"
        env = dict(os.environ, PYTHONPATH=str(Path(args.tree).resolve()))
        subprocess.run(
            [sys.executable, __file__, "--out", str(path)], env=env, check=True, cwd=args.tree
        )
        baseline = json.loads(path.read_text())
    rows = run()
    (RESULTS / f"fallback_{args.label}.json").write_text(json.dumps(rows, indent=1))
    if baseline is not None:
        print("Baseline (" + args.tree + "):\n\n" + table(baseline) + "\n")
        print("This tree:\n\n" + table(rows) + "\n")
        print("\n".join(changed(baseline, rows)) or "no fit changed")
    else:
        print(table(rows))


if __name__ == "__main__":
    main()
