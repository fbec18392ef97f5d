"""Defining the resources imports no client library a run may never use (the code location's
load pays for every import; bench/imports.py measures it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Each was once imported when the code location loaded, at 0.1 s or more of every load.
_LAZY = ("ib_async", "alembic", "mlflow", "openai", "anthropic", "boto3")

_PROBE = f"""
import sys
import resources.broker, resources.database, resources.llm, resources.market_data
import resources.mlflow_tracking, resources.object_store
print(sorted(name for name in {_LAZY!r} if name in sys.modules))
"""


def test_the_resources_load_without_the_client_libraries() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_session_still_finds_ib_async_where_it_uses_it() -> None:
    from resources.ibkr import IbkrResource, IbkrSession

    assert type(IbkrResource().new_ib()).__name__ == "IB"
    assert IbkrSession.limit("BUY", 1, 10.0).lmtPrice == 10.0
