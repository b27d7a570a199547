"""benchmarks.harness: timeit's median, the JSON round trip through benchmarks.report, and
every benchmarks/*.py importing as ``benchmarks.NAME`` without ``sys.path`` edits."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    """``(benchmarks.harness, benchmarks.report)``. ``python -m pytest`` puts the repository
    root on ``sys.path``, the ``pytest`` script does not (``benchmarks`` is not an installed
    package): the root is prepended for this module's tests only."""
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(ROOT))
    from benchmarks import harness, report

    yield harness, report
    mp.undo()


def test_timeit_median_of_known_times(bench, monkeypatch):
    harness = bench[0]
    # A fake clock: call i of fn advances it by durations[i] seconds; the median is known.
    durations = [9.0, 3.0, 1.0, 7.0, 2.0]  # the first is the warm-up
    clock = {"t": 0.0, "calls": 0}
    monkeypatch.setattr(harness.time, "perf_counter", lambda: clock["t"])

    def fn(x):
        clock["t"] += durations[clock["calls"]]
        clock["calls"] += 1
        return x + clock["calls"]

    t = harness.timeit(fn, 10, warmup=1, repeats=4)
    assert clock["calls"] == 5
    assert t.warmup_s == [9.0]
    assert t.times_s == [3.0, 1.0, 7.0, 2.0]
    assert t.median_s == 2.5  # numpy: np.median([3, 1, 7, 2])
    assert t.result == 15
    assert t.rate(5.0) == 2.0


def test_timeit_blocks_on_jax_output(bench):
    harness = bench[0]
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda x: x * 2.0)
    t = harness.timeit(f, jnp.ones(3), warmup=1, repeats=3)
    assert len(t.times_s) == 3 and all(s >= 0 for s in t.times_s)
    assert sorted(t.times_s)[1] == t.median_s
    assert float(t.result.sum()) == 6.0


def test_timeit_rejects_bad_counts(bench):
    harness = bench[0]
    with pytest.raises(ValueError, match="repeats"):
        harness.timeit(lambda: None, repeats=0)


def test_json_round_trip_and_report(bench, tmp_path, capsys):
    harness, report = bench
    import numpy as np

    h = {"date": "2026-12-01T00:00:00+00:00", "cpu": "Test CPU", "cores": 2, "jax": "0.0", "jaxlib": "0.0",
         "backend": "cpu", "devices": ["TFRT_CPU_0"], "load_before": [1.5, 1.0, 0.5]}
    rows = [{"run": "a", "n": 1024, "rate": np.float32(12345.678), "times_s": np.array([0.5, 0.25])},
            {"run": "b", "n": 1, "rate": float("nan"), "extra": None}]
    path = harness.write_rows("demo", rows, header=h, args={"quick": True},
                              columns={"run": "row", "n": "envs", "rate": "steps/s"}, formats={"rate": ",.1f"},
                              notes="a note", path=tmp_path / "demo.json")
    doc = json.loads(path.read_text())
    assert doc["name"] == "demo" and doc["args"] == {"quick": True}
    assert doc["header"]["load_before"] == [1.5, 1.0, 0.5] and len(doc["header"]["load_after"]) == 3
    assert doc["rows"][0]["times_s"] == [0.5, 0.25] and math.isnan(doc["rows"][1]["rate"])
    expected = ("| row | envs | steps/s |\n"
                "|---|---:|---:|\n"
                "| a | 1,024 | 12,345.7 |\n"
                "| b | 1 | nan |")
    assert harness.markdown_table(doc["rows"], doc["columns"], doc["formats"]) == expected
    assert harness.format_value(1234.4, "{:,.0f}x") == "1,234x" and harness.format_value(None, ".1f") == "-"
    assert report.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: Test CPU, 2 cores;") and "before 1.50" in out
    assert expected in out and out.rstrip().endswith("a note")
    assert report.main(["--no-header", str(path)]) == 0
    assert capsys.readouterr().out.strip() == expected + "\n\na note"


def test_run_parts_share_the_header(bench, tmp_path):
    harness = bench[0]
    h = {"date": "d", "cpu": "c", "cores": 1, "devices": [], "load_before": [2.0, 2.0, 2.0]}
    sub = harness.Run("demo", args={"quick": True}, header=h).part("A", columns=["x"])
    sub.add(x=1.25)
    doc = harness.read_rows(sub.save(tmp_path / "a.json"))
    assert doc["name"] == "demo_A" and doc["args"] == {"quick": True}
    assert doc["header"]["load_before"] == [2.0, 2.0, 2.0] and "load_after" in doc["header"]
    assert harness.render(doc, with_header=False) == "| x |\n|---:|\n| 1.25 |"


def test_report_names_a_bad_file(bench, tmp_path):
    harness, report = bench
    bad = tmp_path / "x.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(SystemExit):
        report.main([str(bad)])
    with pytest.raises(ValueError, match="missing name, header"):
        harness.read_rows(bad)


def test_every_benchmark_imports_as_a_package_module(bench):
    # As `python -m benchmarks.NAME` runs them (the repository root on sys.path): every module
    # imports (no work at import time beyond definitions) and none edits sys.path. In this
    # process: jax, gymnax and the packages are loaded once for the whole suite.
    names = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")
    offenders = [n for n in names if "sys.path" in (ROOT / "benchmarks" / f"{n}.py").read_text()]
    assert offenders == []
    for name in names:
        before = list(sys.path)
        module = importlib.import_module(f"benchmarks.{name}")
        assert sys.path == before, f"benchmarks.{name} changed sys.path"
        assert Path(module.__file__).resolve() == ROOT / "benchmarks" / f"{name}.py"
