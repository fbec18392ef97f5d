"""Whether an artifact may be consumed: the latest result of each blocking check passed on it.

A pure function over the recorded results, so every way a step can be launched (a whole run, a
downstream-only materialization from the UI or CLI, a sensor, a backfill) meets the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from resources.database import ArtifactRecord, CheckRecord


def blocking_problem(
    record: ArtifactRecord,
    results: Mapping[str, CheckRecord],
    blocking: Sequence[str],
    fix: str,
) -> str | None:
    """Why ``record`` must not be consumed (None: every blocking check passed on it).

    ``fix`` is what to do about a failure, e.g. "re-materialize market_data".
    """
    asset = record.step_name or record.name
    which = f"{asset} of {record.partition_key}"
    failed = [results[name] for name in blocking if name in results and not results[name].passed]
    if failed:
        first = failed[0]
        others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        reason = (first.description or "no description").strip().splitlines()[0]
        return f"{which} failed {first.check_name} ({reason}){others}: {fix}"
    unchecked = [name for name in blocking if name not in results]
    if unchecked:
        return (
            f"{which} (artifact #{record.id}, run {record.execution_id}) has no result for its "
            f"blocking check{'s' if len(unchecked) > 1 else ''} {', '.join(unchecked)}: run "
            f"{asset}'s checks (Dagster UI: the asset's Checks tab, Execute) or re-materialize "
            f"{asset} with its checks"
        )
    return None
