"""The fuzz targets of fuzz/, each run for a bounded number of inputs (atheris
when it is installed, the random-mutation fallback otherwise), and every input
that once crashed a target (tests/data/fuzz/TARGET/) replayed.

Longer runs: docs/development.md, "Fuzzing".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
CRASHES = Path(__file__).resolve().parent / "data" / "fuzz"
# Inputs per target: a few seconds each. The time cap only bounds a slow
# machine; a run that ends early still has to end cleanly.
RUNS = {"chain": 3_000, "inventory": 2_000, "pins": 50_000, "state": 20_000}
CAP_SECONDS = 20


def _run(target: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(FUZZ / f"fuzz_{target}.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return output


@pytest.mark.parametrize("target", sorted(RUNS))
def test_fuzz_target_runs_clean(target: str, tmp_path: Path) -> None:
    output = _run(
        target,
        str(tmp_path / "corpus"),
        f"-runs={RUNS[target]}",
        f"-max_total_time={CAP_SECONDS}",
        "-seed=1",
        "-timeout=30",
        "-max_len=65536",
        f"-artifact_prefix={tmp_path}/",
    )
    assert "Done " in output
    assert not list(tmp_path.glob("crash-*"))


def test_random_fallback_engine_runs_clean(tmp_path: Path) -> None:
    """Where atheris has no wheel the targets still run, by random mutation."""
    for target in ("pins", "chain"):
        output = _run(
            target,
            "-runs=300",
            f"-artifact_prefix={tmp_path}/",
            env={"PINAUDIT_FUZZ_ENGINE": "random"},
        )
        assert "Done 300 runs" in output


@pytest.mark.parametrize(
    "target", sorted(p.name for p in CRASHES.iterdir() if p.is_dir() and any(p.iterdir()))
)
def test_inputs_that_once_crashed_are_handled(target: str) -> None:
    inputs = sorted(str(p) for p in (CRASHES / target).iterdir())
    output = _run(target, *inputs)
    assert f"replayed {len(inputs)} input(s): no crash" in output
