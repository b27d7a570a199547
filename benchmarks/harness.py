"""One harness for the timing benchmarks: machine header, timing, JSON rows, markdown tables.

    from benchmarks import harness

    run = harness.Run("lp_bounds", args=vars(args),                 # header + load before
                      columns={"batch": "batch", "aps": "actions/s"}, formats={"aps": ",.0f"})
    t = harness.timeit(jax.jit(f), x, warmup=1, repeats=3)           # Timing(median_s, times_s, ...)
    run.add(batch=B, aps=B / t.median_s, times_s=t.times_s)
    print(run.table()); run.save()                                   # load after, JSON file

A saved run is one JSON file ``benchmarks/results/<name>-<UTC timestamp>.json`` (the folder
is ``$BENCH_RESULTS_DIR`` when set, e.g. for smoke runs)::

    {"name": str, "header": header(), "args": {...}, "columns": [[key, label], ...],
     "formats": {key: format spec}, "notes": str, "rows": [{key: value, ...}, ...]}

``python -m benchmarks.report FILE.json`` renders it as the markdown table that
``Run.table()`` printed, so a table in ``benchmarks/RESULTS*.md`` is regenerated from its JSON.
Rows may carry keys that are not columns (all timings, seeds): they are kept in the JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (``os.getloadavg``), rounded to 0.01."""
    return [round(x, 2) for x in os.getloadavg()]


def header() -> dict:
    """Where and when a run happens: ``date`` (UTC, ISO 8601), ``cpu`` (model), ``cores``
    (``os.cpu_count()``), ``platform``, ``python``, ``jax`` / ``jaxlib`` versions,
    ``backend``, ``devices`` (``f"{d} ({d.device_kind})"`` for each ``d`` of ``jax.devices()``)
    and ``load_before`` (``load_average()`` now). ``Run.save`` adds ``load_after``. Imports jax (it initialises
    the backend)."""
    import jax
    import jaxlib

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": [f"{d} ({d.device_kind})" for d in jax.devices()],
        "load_before": load_average(),
    }


_header_now = header  # ``write_rows`` has a ``header`` argument


def header_line(h: Mapping) -> str:
    """One line summarising a ``header()`` dict (with or without ``load_after``)."""
    devices = h.get("devices") or []
    dev = f"{len(devices)} x {devices[0]}" if devices else "?"
    load = f"load average (1 min) before {h['load_before'][0]:.2f}"
    if "load_after" in h:
        load += f", after {h['load_after'][0]:.2f}"
    return (f"machine: {h.get('cpu')}, {h.get('cores')} cores; jax {h.get('jax')} / jaxlib {h.get('jaxlib')} on "
            f"{h.get('backend')} ({dev}); {load}; {h.get('date')}")


def _block(x):
    """``jax.block_until_ready`` when jax is loaded; other values are returned as they are."""
    import sys

    jax = sys.modules.get("jax")
    return jax.block_until_ready(x) if jax is not None else x


@dataclass
class Timing:
    """Wall times of one function: ``median_s`` (median of ``times_s``), ``times_s`` (the
    ``repeats`` timed calls, seconds), ``warmup_s`` (the untimed warm-up calls, compilation
    included), ``result`` (what the last call returned)."""

    median_s: float
    times_s: list[float]
    warmup_s: list[float] = field(default_factory=list)
    result: Any = None

    def rate(self, work: float) -> float:
        """``work`` per second at the median time (e.g. env steps per call -> env-steps/s)."""
        return work / self.median_s

    def as_dict(self) -> dict:
        """The times (not the result), for a JSON row."""
        return {"median_s": self.median_s, "times_s": self.times_s, "warmup_s": self.warmup_s}


def timeit(fn: Callable, *args, warmup: int = 1, repeats: int = 3, **kwargs) -> Timing:
    """Call ``fn(*args, **kwargs)`` ``warmup`` times untimed, then ``repeats`` times timed,
    each call ending with ``jax.block_until_ready`` on its output (asynchronous dispatch
    would otherwise time only the launch). Returns a ``Timing`` whose ``median_s`` is the
    median of the timed calls. To thread a state through the calls (one training update
    after another), pass a closure that updates it::

        box = [state]
        def step():
            box[0], metrics = update(box[0])
            return metrics
        t = timeit(step, repeats=5)
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"timeit needs repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    warm, times, out = [], [], None
    for _ in range(warmup):
        t0 = time.perf_counter()
        out = _block(fn(*args, **kwargs))
        warm.append(time.perf_counter() - t0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = _block(fn(*args, **kwargs))
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), times, warm, out)


def _jsonable(x):
    """Plain JSON values for numpy / jax scalars and arrays, tuples, paths; NaN and inf
    stay floats (Python's json writes them as NaN / Infinity and reads them back)."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, bool, int, float)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy / jax arrays and scalars
        return _jsonable(x.tolist())
    return str(x)


def format_value(value, spec: str | None = None) -> str:
    """One table cell: ``format(value, spec)`` when ``spec`` is given (``spec.format(value)``
    when it holds braces, e.g. ``"{:,.0f}x"``); else ints with thousands separators, floats
    with 3 significant digits (``,`` above 1000), ``None`` as ``-``, strings as they are. A
    value the spec cannot format (``None``, a string in a number column) falls back to the
    default."""
    if spec is not None and value is not None:
        try:
            return spec.format(value) if "{" in spec else format(value, spec)
        except (TypeError, ValueError):
            pass
    if value is None:
        return "-"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def _columns(rows: Sequence[Mapping], columns) -> list[tuple[str, str]]:
    if columns is None:
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        return [(k, k) for k in keys]
    if isinstance(columns, Mapping):
        return [(str(k), str(v)) for k, v in columns.items()]
    return [(c, c) if isinstance(c, str) else (str(c[0]), str(c[1])) for c in columns]


def markdown_table(rows: Sequence[Mapping], columns=None, formats: Mapping[str, str] | None = None) -> str:
    """A markdown table of ``rows`` (dicts). ``columns``: ``{key: label}``, a list of keys or
    of ``[key, label]`` pairs (default: every key, in first-seen order); ``formats``:
    ``{key: format spec}`` (see ``format_value``). Numbers are right-aligned. A row
    without a column's key shows ``-``."""
    cols = _columns(rows, columns)
    formats = formats or {}
    numeric = {k: all(isinstance(r.get(k), (int, float)) or r.get(k) is None for r in rows) for k, _ in cols}
    lines = ["| " + " | ".join(label for _, label in cols) + " |",
             "|" + "|".join("---:" if numeric[k] else "---" for k, _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(format_value(r.get(k), formats.get(k)) for k, _ in cols) + " |")
    return "\n".join(lines)


def results_dir() -> Path:
    """``$BENCH_RESULTS_DIR`` when set, else ``benchmarks/results``."""
    return Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS_DIR)


def write_rows(name: str, rows: Sequence[Mapping], *, header: Mapping | None = None, args: Mapping | None = None,
               columns=None, formats: Mapping[str, str] | None = None, notes: str = "",
               path: str | Path | None = None) -> Path:
    """Write one run as JSON (the format in the module docstring) and return its path:
    ``path`` or ``results_dir() / f"{name}-{UTC timestamp}.json"``. ``header`` defaults to
    ``header()`` now; ``load_after`` is added when missing."""
    if not name or "/" in name:
        raise ValueError(f"benchmark name must be a non-empty file-name part, got {name!r}")
    h = dict(header if header is not None else _header_now())
    h.setdefault("load_after", load_average())
    doc = {"name": name, "header": h, "args": dict(args or {}),
           "columns": [list(c) for c in _columns(rows, columns)], "formats": dict(formats or {}),
           "notes": notes, "rows": [dict(r) for r in rows]}
    if path is None:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = results_dir() / f"{name}-{stamp}.json"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dumps(_jsonable(doc)))
    return path


def _dumps(doc: dict) -> str:
    """JSON with one line per top-level key and one line per row (short, diffable)."""
    items = []
    for k, v in doc.items():
        if k == "rows" and v:
            body = "[\n" + ",\n".join("  " + json.dumps(r) for r in v) + "\n ]"
        else:
            body = json.dumps(v)
        items.append(f" {json.dumps(k)}: {body}")
    return "{\n" + ",\n".join(items) + "\n}\n"


def read_rows(path: str | Path) -> dict:
    """A run written by ``write_rows``; raises ``ValueError`` naming the file when it is not one."""
    doc = json.loads(Path(path).read_text())
    missing = [k for k in ("name", "header", "rows") if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ValueError(f"{path}: not a benchmark results file (missing {', '.join(missing)})")
    return doc


def render(doc: Mapping, with_header: bool = True) -> str:
    """Markdown for one run read by ``read_rows``: its header line, the table, the notes."""
    parts = [header_line(doc["header"]), ""] if with_header else []
    parts.append(markdown_table(doc["rows"], doc.get("columns"), doc.get("formats")))
    if doc.get("notes"):
        parts += ["", doc["notes"]]
    return "\n".join(parts)


class Run:
    """One benchmark run: ``header()`` when created (load before), rows added one by one,
    ``table()`` for the console, ``save()`` for the JSON file (load after)."""

    def __init__(self, name: str, args: Mapping | None = None, columns=None,
                 formats: Mapping[str, str] | None = None, notes: str = "", header: Mapping | None = None):
        self.name, self.args, self.columns, self.formats, self.notes = name, dict(args or {}), columns, formats, notes
        self.header = dict(header) if header is not None else _header_now()
        self.rows: list[dict] = []

    def part(self, suffix: str, columns=None, formats: Mapping[str, str] | None = None, notes: str = "") -> "Run":
        """Another table of the same run (a script printing several): a ``Run`` named
        ``<name>_<suffix>`` with this run's header (load before) and args, saved on its own."""
        return Run(f"{self.name}_{suffix}", self.args, columns, formats, notes, header=self.header)

    def add(self, row: Mapping | None = None, **values) -> dict:
        """Append a row (a dict and/or keyword values); returns it."""
        r = {**(row or {}), **values}
        self.rows.append(r)
        return r

    def table(self) -> str:
        """The markdown table of the rows so far."""
        return markdown_table(self.rows, self.columns, self.formats)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the JSON file (``write_rows``) and return its path."""
        self.header["load_after"] = load_average()
        return write_rows(self.name, self.rows, header=self.header, args=self.args, columns=self.columns,
                          formats=self.formats, notes=self.notes, path=path)

    def finish(self) -> Path:
        """Save, then print the header line, the table and where the JSON went."""
        path = self.save()
        print()
        print(render(read_rows(path)))
        print(f"\n(rows saved to {path}; `python -m benchmarks.report {path}` renders them)")
        return path
