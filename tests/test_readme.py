"""Every code block of the README runs as printed.

The ``python`` blocks run in order in one namespace (a later block may use
what an earlier one made, as a reader following the page would), in a
temporary folder. The shell block of the command-line section runs with
``bash -e`` in a temporary folder, with this environment's ``bin`` on the
PATH instead of its ``source .venv/bin/activate`` line. The two set-up
commands (``pip install``) are not run here; ``.ci/run`` is the second one.
"""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def _blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [code for lang, code in BLOCK.findall(text) if lang == language]


def test_readme_has_the_blocks_it_promises():
    assert len(_blocks("python")) >= 5
    assert any("bayes-prsn demo --out demo" in block for block in _blocks("bash"))


@pytest.mark.slow
def test_python_blocks_run_as_printed(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sklearn

    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    try:
        for number, code in enumerate(_blocks("python")):
            with warnings.catch_warnings():
                # A reader sees warnings (a short example's ConvergenceWarning); they are
                # not errors here.
                warnings.simplefilter("default")
                try:
                    exec(compile(code, f"README.md python block {number}", "exec"), namespace)
                except Exception as err:  # pragma: no cover - the message is the point
                    raise AssertionError(f"README python block {number} fails: {err!r}") from err
            plt.close("all")
    finally:
        sklearn.set_config(enable_metadata_routing=False)
    assert (tmp_path / "model.bprsn").exists()


@pytest.mark.slow
def test_cli_block_runs_as_printed(tmp_path):
    (block,) = [b for b in _blocks("bash") if "bayes-prsn demo --out demo" in b]
    lines = [line for line in block.splitlines() if not line.startswith("source ")]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["bash", "-e", "-c", "\n".join(lines)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for path in ("demo/model.bprsn", "fit/coefficients.csv", "fit_laplace/posterior.nc"):
        assert (tmp_path / path).exists(), path
    header = (tmp_path / "predictions.csv").read_text().splitlines()[0]
    assert "prediction_lower90" in header
