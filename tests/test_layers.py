"""The layers import one way (import-linter's contracts in pyproject.toml), and every module of
trading_assets has taken a side: domain core or Dagster wiring."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _contract(contract_id: str) -> dict:
    return next(c for c in CONFIG["contracts"] if c["id"] == contract_id)


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in result.stdout


def test_every_module_is_core_or_wiring() -> None:
    core = set(_contract("core-is-pure")["source_modules"])
    wiring = set(_contract("core-is-pure")["forbidden_modules"]) - {"resources", "io_managers"}

    def placed(module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in core | wiring)

    packages = {".".join(p.relative_to(ROOT).parent.parts)
                for p in (ROOT / "trading_assets").rglob("__init__.py")}
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "trading_assets").rglob("*.py") if p.name != "__init__.py"
    }
    # Packages hold modules of both kinds; each module must be named (or be inside a named one).
    unplaced = sorted(m for m in modules - packages if not placed(m))
    assert unplaced == [], (
        f"add each to pyproject.toml's [tool.importlinter] core or wiring lists: {unplaced}"
    )
    assert not core & wiring


def test_no_module_imports_itself_through_others() -> None:
    """No import circle anywhere (function-level imports included), e.g. the one there was
    between backfill, definitions and the order asset."""
    import grimp

    graph = grimp.build_graph(*CONFIG["root_packages"])
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    circles = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for imported in imports[module]:
            if imported in path:
                circles.append(path[path.index(imported):] + [imported])
            elif imported not in done:
                visit(imported, [*path, imported])
        done.add(module)

    for module in sorted(imports):
        if module not in done:
            visit(module, [module])
    assert circles == []
