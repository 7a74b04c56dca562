"""Where the test suite's time goes: per file, JAX compilation, distinct SVI programs.

Runs the README's test command (``pytest -n 2 --dist loadfile``) with this
file loaded as a pytest plugin in every worker. Each worker records, through
``jax.monitoring``, the time JAX spent tracing, lowering and compiling (XLA)
and how many programs it compiled, and, through a wrapper of
``bayes_prsn.svi._compiled``, every new compiled SVI chunk (its static
settings and array shapes), and, through a wrapper of the estimator's
``choose_smoothing``, the time the fits spent choosing their smoothing (the
validation fits) and on how many folds. Tests run in subprocesses (the
command line, the examples) are timed with their test but not looked into.

    python benchmarks/suite_time.py                        # the whole suite
    python benchmarks/suite_time.py -- tests/test_svi.py   # pytest arguments after --
    JAX_COMPILATION_CACHE_DIR=/tmp/c python benchmarks/suite_time.py --label cache

Results: a summary on stdout and ``results/suite_time_<label>.json`` (wall
time, per-file durations from ``--durations=0``, the 40 slowest tests, per-worker
compilation and JAX's tracing, lowering and compilation time per test file).
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Where the plugin in each worker writes what it recorded (set by ``main``).
WORKER_FOLDER = "BAYES_PRSN_SUITE_TIME_DIR"


def _test_file() -> str:
    """The test file running now in this worker (from pytest's ``PYTEST_CURRENT_TEST``)."""
    return os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[0] or "(outside tests)"


def _no_choices() -> dict:
    """A file's smoothing-choice record before any choice: seconds and counts by kind."""
    return {"seconds": 0.0, "k_folds": 0, "one_split": 0}


def pytest_configure(config):
    """Plugin side (runs in every pytest process): record compilation, write it at exit."""
    folder = os.environ.get(WORKER_FOLDER)
    if not folder:
        return
    import jax.monitoring

    import bayes_prsn.svi as svi

    durations, counts, programs = collections.Counter(), collections.Counter(), []
    per_file = collections.Counter()  # JAX's tracing, lowering and compiling, by test file

    def on_duration(event, seconds, **_):
        durations[event.rsplit("/", 1)[-1]] += seconds
        counts[event.rsplit("/", 1)[-1]] += 1
        per_file[_test_file()] += seconds

    def on_event(event, **_):
        counts[event.rsplit("/", 1)[-1]] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    compiled = svi._compiled

    def recording(static, shapes, step_size, chunk_size):
        misses = compiled.cache_info().misses
        result = compiled(static, shapes, step_size, chunk_size)
        if compiled.cache_info().misses > misses:
            test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
            programs.append({"static": repr(static), "shapes": repr(shapes), "test": test})
        return result

    recording.cache_info, recording.cache_clear = compiled.cache_info, compiled.cache_clear
    svi._compiled = recording

    # The default fit's smoothing choice (its validation fits), by test file and kind.
    import bayes_prsn.estimator as estimator

    choosing = collections.defaultdict(_no_choices)
    choose = estimator.choose_smoothing

    def timed_choice(problem, config, *, on_subset):
        start = time.perf_counter()
        smoothing = choose(problem, config, on_subset=on_subset)
        entry = choosing[_test_file()]
        entry["seconds"] += time.perf_counter() - start
        folds = (smoothing.report or {}).get("folds")
        if folds:
            entry["k_folds" if folds > 1 else "one_split"] += 1
        return smoothing

    estimator.choose_smoothing = timed_choice

    def write():
        path = Path(folder) / f"worker_{os.getpid()}.json"
        summary = {
            "seconds": dict(durations),
            "counts": dict(counts),
            "svi_programs": programs,
            "jax_per_file": dict(per_file),
            "smoothing_choice": dict(choosing),
        }
        path.write_text(json.dumps(summary))

    atexit.register(write)


def _per_test(output: str) -> list[tuple[float, str]]:
    found = re.findall(r"^\s*([\d.]+)s ((?:call|setup|teardown)\s+tests/\S+)", output, re.M)
    return sorted(((float(seconds), name) for seconds, name in found), reverse=True)


def _per_file(output: str) -> dict[str, float]:
    totals: collections.Counter = collections.Counter()
    for seconds, name in _per_test(output):
        totals[name.split()[-1].split("::")[0]] += seconds
    return dict(totals.most_common())


def _choices(workers: list[dict]) -> dict[str, dict]:
    """Seconds in the smoothing choice and its K-fold and one-split choices, by test file."""
    totals: dict[str, dict] = {}
    for worker in workers:
        for name, entry in worker.get("smoothing_choice", {}).items():
            total = totals.setdefault(name, _no_choices())
            for key, value in entry.items():
                total[key] += value
    return dict(sorted(totals.items(), key=lambda item: -item[1]["seconds"]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="now")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        env = dict(
            os.environ,
            **{WORKER_FOLDER: folder},
            PYTHONPATH=os.pathsep.join(
                filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")])
            ),
        )
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "suite_time",
            "-n",
            "2",
            "--dist",
            "loadfile",
        ]
        command += ["--durations=0", "-q", *args.pytest_args]
        start = time.perf_counter()
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        workers = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("worker_*.json"))]
    workers = [w for w in workers if w["counts"]]  # the controller process compiles nothing
    per_file = _per_file(run.stdout)
    result = {
        "wall_s": wall,
        "returncode": run.returncode,
        "summary_line": run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "",
        "per_file_s": per_file,
        "workers": [
            {
                "seconds": w["seconds"],
                "counts": w["counts"],
                "svi_programs": len(w["svi_programs"]),
                "distinct_svi_programs": len(
                    {(p["static"], p["shapes"]) for p in w["svi_programs"]}
                ),
            }
            for w in workers
        ],
        "svi_programs": [p for w in workers for p in w["svi_programs"]],
        "jax_per_file_s": dict(
            sum(
                (collections.Counter(w.get("jax_per_file", {})) for w in workers),
                start=collections.Counter(),
            ).most_common()
        ),
        "slowest_tests": [[seconds, name] for seconds, name in _per_test(run.stdout)[:40]],
        "smoothing_choice_per_file": _choices(workers),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"suite_time_{args.label}.json").write_text(json.dumps(result, indent=1))
    print(f"wall {wall:.0f} s, pytest exit {run.returncode}: {result['summary_line']}")
    print(f"sum of test durations {sum(per_file.values()):.0f} s over {len(per_file)} files")
    for w in result["workers"]:
        s, c = w["seconds"], w["counts"]
        print(
            f"worker: XLA compile {s.get('backend_compile_duration', 0):.0f} s in "
            f"{c.get('backend_compile_duration', 0)} programs, tracing "
            f"{s.get('jaxpr_trace_duration', 0):.0f} s, lowering "
            f"{s.get('jaxpr_to_mlir_module_duration', 0):.0f} s; SVI chunk programs "
            f"{w['svi_programs']} ({w['distinct_svi_programs']} distinct); persistent-cache "
            f"hits {c.get('cache_hits', 0)}"
        )
    jax_time = result["jax_per_file_s"]
    print("   test s   JAX s  file (JAX: tracing, lowering and XLA compilation in the workers)")
    for name, seconds in list(per_file.items())[:12]:
        print(f"{seconds:8.1f} {jax_time.get(name, 0.0):7.1f}  {name}")
    choices = result["smoothing_choice_per_file"]
    print(
        f"smoothing choice in the workers: {sum(c['seconds'] for c in choices.values()):.0f} s, "
        f"{sum(c['k_folds'] for c in choices.values())} on K folds, "
        f"{sum(c['one_split'] for c in choices.values())} on one split"
    )
    print("slowest tests:")
    for seconds, name in result["slowest_tests"][:10]:
        print(f"{seconds:8.1f} s  {name}")
    if run.returncode:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")


if __name__ == "__main__":
    main()
