"""Figures of loading the code location as `dagster` does, measured with ``python -X importtime``.

Each load is a fresh process in a throwaway data folder and Dagster home (``sandbox``).
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.pipeline import _timed_process, sandbox
from bench.stats import Figure, median

# What `dagster dev` does with workspace.yaml's python_module: import it, call its @definitions.
LOAD = "import trading_assets.definitions as d; d.defs()"
BASELINE = "import dagster"
LOAD_TARGET_S = 2.0
FIRST_PARTY = frozenset({"trading_assets", "resources", "io_managers", "sql", "bench"})
# -X importtime writes to stderr, which _timed_process keeps only on failure: the child sends its
# stderr to the file named by argv[1] first (os and sys are loaded before any of this runs).
_REDIRECT = "import os, sys; os.dup2(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT), 2); "
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass(frozen=True)
class Imported:
    """One line of ``-X importtime``: a module, its own and its cumulative seconds, its depth."""

    module: str
    self_s: float
    cumulative_s: float
    depth: int
    parent: str | None


def parse_importtime(stderr: str) -> list[Imported]:
    """The ``-X importtime`` lines of ``stderr``, each with the module that imported it."""
    lines = []
    for line in stderr.splitlines():
        match = _LINE.match(line)
        if match:
            own, cumulative, indent, module = match.groups()
            lines.append((module, int(own) / 1e6, int(cumulative) / 1e6, (len(indent) - 1) // 2))
    # A module's line follows those of the modules it imported, one level deeper.
    parents: list[str | None] = [None] * len(lines)
    waiting: list[int] = []
    for i in range(len(lines) - 1, -1, -1):
        while waiting and lines[waiting[-1]][3] >= lines[i][3]:
            waiting.pop()
        parents[i] = lines[waiting[-1]][0] if waiting else None
        waiting.append(i)
    return [Imported(*line, parent) for line, parent in zip(lines, parents, strict=True)]


def import_total(imported: list[Imported]) -> float:
    """Seconds spent importing: the cumulative times of the outermost imports."""
    return sum(i.cumulative_s for i in imported if i.depth == 0)


def _package(module: str | None) -> str | None:
    return None if module is None else module.split(".", 1)[0]


def heaviest(imported: list[Imported], count: int = 5) -> list[tuple[str, float, str | None]]:
    """The ``count`` libraries the project imports itself that cost most: (package, cumulative
    seconds, the project module that imported it first; None for the command line itself).

    A library's time is the cumulative time of its imports by the project, so it includes what
    it imported first (matplotlib's includes PIL's); libraries only other libraries import are
    counted in theirs, never twice.
    """
    seconds: dict[str, float] = defaultdict(float)
    first_by: dict[str, str | None] = {}
    for entry in imported:
        package, parent = _package(entry.module), _package(entry.parent)
        if package in FIRST_PARTY or (parent is not None and parent not in FIRST_PARTY):
            continue
        seconds[package] += entry.cumulative_s
        first_by.setdefault(package, entry.parent)
    ranked = sorted(seconds.items(), key=lambda item: -item[1])[:count]
    return [(package, total, first_by[package]) for package, total in ranked]


def project_time(imported: list[Imported]) -> tuple[float, Imported | None]:
    """Seconds the project's own modules took themselves (their code run at import, not the
    libraries they import), and the slowest of them."""
    own = [i for i in imported if _package(i.module) in FIRST_PARTY]
    return sum(i.self_s for i in own), max(own, key=lambda i: i.self_s, default=None)


def _load(code: str, env: dict[str, str]) -> tuple[float, list[Imported]]:
    """(wall seconds, the import lines) of ``python -X importtime -c code`` as a fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".importtime") as stderr:
        command = [sys.executable, "-X", "importtime", "-c", _REDIRECT + code, stderr.name]
        try:
            seconds, _ = _timed_process(command, env)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{Path(stderr.name).read_text()[-2000:]}") from None
        return seconds, parse_importtime(Path(stderr.name).read_text())


def import_figures(runs: int = 3) -> list[Figure]:
    """The code location's load (import + ``defs()``) beside ``import dagster``, median of runs."""
    baselines, loads = [], []
    with tempfile.TemporaryDirectory(prefix="trading-bench-") as tmp, \
            sandbox(Path(tmp), "imports") as env:
        for _ in range(runs):  # in turns: a busy spell of the machine slows both alike
            baselines.append(_load(BASELINE, {}))
            loads.append(_load(LOAD, env))
    wall = median([seconds for seconds, _ in loads])
    totals = [import_total(imported) for _, imported in loads]
    # The heaviest of the run whose import total is the median one, not a mix of runs.
    typical = loads[totals.index(sorted(totals)[len(totals) // 2])][1]
    ranked = "; ".join(
        f"{package} {seconds:.2f} s" + (f" (from {by})" if by else "")
        for package, seconds, by in heaviest(typical)
    )
    note = (f"{runs} fresh processes each, start to exit; heaviest imports (cumulative): "
            f"{ranked}")
    own, slowest = project_time(typical)
    own_note = f"{len(typical)} modules; the project's own took {own:.2f} s" + (
        f" (slowest: {slowest.module}, {slowest.self_s:.2f} s)" if slowest else "")
    return [
        Figure(
            "load the code location (import + defs()), fresh process, median",
            wall, "s", 'python -X importtime -c "import dagster"',
            median([seconds for seconds, _ in baselines]), f"<= {LOAD_TARGET_S:g} s",
            wall <= LOAD_TARGET_S, note,
        ),
        Figure(
            "import time of the code location (-X importtime total), median",
            median(totals), "s", "the same total of import dagster",
            median([import_total(imported) for _, imported in baselines]), "-", None,
            own_note,
        ),
    ]
