"""How fit time and memory grow with the number of samples.

Each size is fitted in a fresh process (JAX compilation included) on
``simulate.make_low_rank`` with p = 20 predictors and default settings;
the script reports wall time of ``fit`` and the peak resident memory of the
process, or that the fit did not finish within ``--timeout`` seconds.

    python benchmarks/scale.py --sizes 10000,100000 --timeout 600

Results: a markdown table on stdout and ``results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

SCRIPT = """
import json, resource, time, warnings
from bayes_prsn import PersonalizedRegression, simulate
data = simulate.make_low_rank(n_samples={n}, n_features=20, random_state=0)
warnings.simplefilter("ignore")
start = time.perf_counter()
est = PersonalizedRegression(random_state=0, devices={devices}).fit(
    data.X, data.y, covariates=data.covariates
)
seconds = time.perf_counter() - start
import numpy as np
print(json.dumps({{
    "seconds": seconds,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "steps": int(est.n_steps_),
    "theta_mse": float(np.mean((est.coef_ - data.coef) ** 2)),
    "theta_mse_population": float(np.mean((est.population_coef_ - data.coef) ** 2)),
}}))
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--devices", default="None", help="devices= of the estimator")
    parser.add_argument("--output", default=str(RESULTS / "scale.json"))
    args = parser.parse_args(argv)
    rows = []
    for n in (int(float(s)) for s in args.sizes.split(",")):
        code = SCRIPT.format(n=n, devices=args.devices)
        try:
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=args.timeout
            )
            if out.returncode != 0:
                row = {"n": n, "error": out.stderr.strip().splitlines()[-1][:200]}
            else:
                row = {"n": n, **json.loads(out.stdout.strip().splitlines()[-1])}
        except subprocess.TimeoutExpired:
            row = {"n": n, "error": f"did not finish within {args.timeout:.0f} s"}
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    print("| N | fit s | peak MB | steps | theta-MSE (population) |\n|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['n']} | {row['error']} | – | – | – |")
        else:
            print(
                f"| {row['n']} | {row['seconds']:.1f} | {row['peak_mb']:.0f} | {row['steps']} "
                f"| {row['theta_mse']:.4g} ({row['theta_mse_population']:.4g}) |"
            )
    Path(args.output).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
