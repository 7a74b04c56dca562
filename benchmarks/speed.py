"""Fit speed at ordinary sizes: cold and warm fits, 5-fold cross-validation, GWR beside them.

For every ``--sizes`` N (default 1,000, 2,000 and 20,000) the data are
``simulate.make_low_rank(n_samples=N)`` (p = 10, smooth rank-3 truth), a new
draw per repeat. Every measurement runs in a fresh Python process, the
interpreter start not counted:

- cold fit: ``PersonalizedRegression().fit`` in a process that has fitted
  nothing yet (JAX compilation included), and the process's import time;
- warm fit: a second fit, of new data of the same size, in that process;
- 5-fold ``cross_val_score`` (in its own fresh process, compilation
  included), up to ``--cv-max`` samples;
- GWR: mgwr's bandwidth search and fit (the peers harness,
  ``peer_runner.py gwr``), up to ``--gwr-max`` samples, when
  ``BAYES_PRSN_GWR_PYTHON`` (or ``--gwr-python``) names a Python with mgwr;
  its data are a draw of N + 10 samples from the same generator and seed,
  the last 10 of which it predicts (its harness always predicts some).

With ``--posterior-sizes N ...`` it measures the default posterior instead
(``sample_posterior()``, NUTS, 4 chains): in one fresh process per repeat,
a default fit of ``simulate.make_small_low_rank(n_samples=N)`` and its
posterior (the process's first, compilation included), then a fit of new
data of the same size and its posterior (the second). ``--baseline TREE``
runs the same repeats with another checkout too, the two trees in turn
(A B A B), for a paired comparison in one session; the JSON goes to
``results/speed_posterior_<label>.json`` (``--label``).

Each is repeated ``--repeats`` times (default 3); the table shows medians
and the JSON (``results/speed.json``) every run. ``--tree`` runs the
bayes_prsn measurements against another checkout (``git worktree add
/tmp/before <commit>``), for a before/after table in one session.
``--write-readme`` replaces the table between the speed markers of
``benchmarks/README.md``.

    python benchmarks/speed.py
    python benchmarks/speed.py --sizes 2000 --repeats 3 --tree /tmp/before --label before
    python benchmarks/speed.py --posterior-sizes 200 --repeats 5 --baseline /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
README = HERE / "README.md"
MARKERS = ("<!-- speed table: start -->", "<!-- speed table: end -->")
#: New samples GWR predicts after its fit (its harness always predicts some).
GWR_TEST_SAMPLES = 10


def _data(n_samples: int, seed: int):
    from bayes_prsn import simulate

    return simulate.make_low_rank(n_samples=n_samples, random_state=seed)


def _worker_fit(n_samples: int, seed: int) -> dict:
    start = time.perf_counter()
    from bayes_prsn import PersonalizedRegression

    imported = time.perf_counter() - start
    seconds = []
    for offset in (0, 1000):
        data = _data(n_samples, seed + offset)
        start = time.perf_counter()
        PersonalizedRegression(random_state=0).fit(data.X, data.y, covariates=data.covariates)
        seconds.append(time.perf_counter() - start)
    return {"import": imported, "cold": seconds[0], "warm": seconds[1]}


def _worker_posterior(n_samples: int, seed: int) -> dict:
    import warnings

    from bayes_prsn import PersonalizedRegression, simulate

    seconds = {}
    for name, offset in (("first", 0), ("second", 1000)):
        data = simulate.make_small_low_rank(n_samples=n_samples, random_state=seed + offset)
        estimator = PersonalizedRegression(random_state=0)
        estimator.fit(data.X, data.y, covariates=data.covariates)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a ConvergenceWarning does not change the time
            estimator.sample_posterior(random_state=0)
        seconds[f"nuts_{name}"] = time.perf_counter() - start
    return seconds


def _worker_cv(n_samples: int, seed: int) -> dict:
    import sklearn
    from sklearn.model_selection import KFold, cross_val_score

    from bayes_prsn import PersonalizedRegression

    data = _data(n_samples, seed)
    start = time.perf_counter()
    # Routing passes every fold its covariates, in fit and in score.
    with sklearn.config_context(enable_metadata_routing=True):
        cross_val_score(
            PersonalizedRegression(random_state=0),
            data.X,
            data.y,
            cv=KFold(5, shuffle=True, random_state=0),
            params={"covariates": data.covariates},
        )
    return {"cv": time.perf_counter() - start}


def _subprocess_json(command: list[str], cwd: Path, timeout: float | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    try:
        out = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:300]}
    return json.loads(lines[-1][len("RESULT ") :])


def _bayes_prsn(kind: str, n_samples: int, seed: int, tree: Path) -> dict:
    command = [sys.executable, str(HERE / "speed.py"), "--worker", kind, str(n_samples), str(seed)]
    return _subprocess_json(command, tree, None)


def _gwr(python: str, n_samples: int, seed: int, folder: Path, timeout: float) -> dict:
    data = _data(n_samples + GWR_TEST_SAMPLES, seed)
    coords = data.covariates.to_numpy(float)
    path = folder / f"gwr_{n_samples}_{seed}.npz"
    np.savez(
        path,
        family="gaussian",
        X_train=data.X[:n_samples],
        y_train=data.y[:n_samples],
        X_test=data.X[n_samples:],
        coords_train=coords[:n_samples],
        coords_test=coords[n_samples:],
    )
    result = _subprocess_json(
        [python, str(HERE / "peer_runner.py"), "gwr", str(path)], HERE, timeout
    )
    return {"gwr": result["seconds"][0]} if "seconds" in result else result


def _find_gwr(flag: str | None) -> str | None:
    path = flag or os.environ.get("BAYES_PRSN_GWR_PYTHON")
    if not path:
        return None
    check = subprocess.run([path, "-c", "import mgwr"], capture_output=True)
    return path if check.returncode == 0 else None


def _median(runs: list[dict], key: str):
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def table(rows: dict) -> str:
    def fmt(value, digits=1):
        return "—" if value is None else f"{value:.{digits}f}"

    lines = [
        "| N | import (s) | cold fit (s) | warm fit (s) | 5-fold CV (s) | CV / cold | "
        "GWR fit (s) | cold / GWR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n_samples, row in rows.items():
        cold, cv, gwr = row.get("cold"), row.get("cv"), row.get("gwr")
        lines.append(
            f"| {int(n_samples):,} | {fmt(row.get('import'))} | {fmt(cold)} | "
            f"{fmt(row.get('warm'))} | {fmt(cv)} | "
            f"{fmt(cv / cold if cv and cold else None, 2)} | {fmt(gwr)} | "
            f"{fmt(cold / gwr if cold and gwr else None, 2)} |"
        )
    return "\n".join(lines)


def posterior_table(rows: dict) -> str:
    lines = [
        "| N | tree | first posterior (s) | second posterior (s) |",
        "|---|---|---|---|",
    ]
    for (n_samples, label), row in rows.items():
        lines.append(
            f"| {int(n_samples):,} | {label} | {row['nuts_first']:.1f} | {row['nuts_second']:.1f} |"
        )
    return "\n".join(lines)


def _posterior_main(args) -> None:
    trees = {args.label: args.tree}
    if args.baseline is not None:
        trees = {"baseline": args.baseline, **trees}
    runs, rows = {}, {}
    for n_samples in args.posterior_sizes:
        for repeat in range(args.repeats):
            seed = 100 + repeat
            for label, tree in trees.items():
                run = {"seed": seed, **_bayes_prsn("posterior", n_samples, seed, tree)}
                runs.setdefault(f"{n_samples} {label}", []).append(run)
                print(json.dumps({"n_samples": n_samples, "tree": label, **run}), flush=True)
        for label in trees:
            found = runs[f"{n_samples} {label}"]
            rows[n_samples, label] = {k: _median(found, k) for k in ("nuts_first", "nuts_second")}
    text = posterior_table(rows)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    payload = {"trees": {k: str(v) for k, v in trees.items()}, "runs": runs}
    path = RESULTS / f"speed_posterior_{args.label}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")


def _write_readme(text: str) -> None:
    readme = README.read_text()
    start, end = (readme.index(marker) for marker in MARKERS)
    README.write_text(readme[: start + len(MARKERS[0])] + "\n" + text + "\n" + readme[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 20000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cv-max", type=int, default=2000, help="largest N with a 5-fold CV")
    parser.add_argument("--gwr-max", type=int, default=2000, help="largest N with a GWR fit")
    parser.add_argument("--gwr-timeout", type=float, default=1800.0)
    parser.add_argument("--gwr-python", default=None)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--label", default="after")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--posterior-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "N", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, n_samples, seed = args.worker[0], int(args.worker[1]), int(args.worker[2])
        workers = {"fit": _worker_fit, "cv": _worker_cv, "posterior": _worker_posterior}
        result = workers[kind](n_samples, seed)
        sys.stdout.write("RESULT " + json.dumps(result) + "\n")
        return
    if args.posterior_sizes:
        _posterior_main(args)
        return
    gwr_python = _find_gwr(args.gwr_python)
    runs, rows = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for n_samples in args.sizes:
            runs[n_samples] = []
            for repeat in range(args.repeats):
                seed = 100 + repeat
                run = {"seed": seed, **_bayes_prsn("fit", n_samples, seed, args.tree)}
                if n_samples <= args.cv_max:
                    run.update(_bayes_prsn("cv", n_samples, seed, args.tree))
                if gwr_python and n_samples <= args.gwr_max:
                    run.update(_gwr(gwr_python, n_samples, seed, Path(folder), args.gwr_timeout))
                runs[n_samples].append(run)
                print(json.dumps({"n_samples": n_samples, **run}), flush=True)
            keys = ("import", "cold", "warm", "cv", "gwr")
            rows[n_samples] = {key: _median(runs[n_samples], key) for key in keys}
    text = table(rows)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    payload = {"label": args.label, "tree": str(args.tree), "runs": runs, "medians": rows}
    (RESULTS / f"speed_{args.label}.json").write_text(json.dumps(payload, indent=2) + "\n")
    if args.write_readme:
        _write_readme(text)


if __name__ == "__main__":
    main()
