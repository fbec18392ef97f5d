"""One symbol-day, or a backfill's range of them in one run: how every symbol-day asset runs.

Every asset of the trading graph has ``BackfillPolicy.single_run()``: a backfill (from the UI,
the daemon or `trading-signals backfill`) runs each range of partitions as ONE run instead of a
run per partition, so a symbol's days pay for one process, one code-location load and about a
dozen steps, not sixty times that. Dagster groups a backfill's partitions by the dimension with
fewer keys: more days than symbols (building history) gives a run per symbol over its days.

In a ranged run a step gets every partition of the range at once: ``each`` calls the asset's
per-partition function for each of them in (symbol, date) order, so the order step decides a
symbol's days oldest first and the paper simulator sees time move forward, and hands the IO
manager ``{partition key: value}``. In a one-partition run (schedule, sensor, "Materialize" of
one partition) the same function is called once and its value is the output, as before.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg

from trading_assets.partitions import (
    SymbolError,
    normalize_symbol,
    partition_key_for,
    symbol_and_date,
)
from trading_assets.tags import RANGE_END_TAG, RANGE_START_TAG

T = TypeVar("T")

# Backfill policies are a Dagster beta (uv.lock pins the version this was tested on): its warning,
# raised as each asset is defined, would greet every command.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message="Parameter `backfill_policy`")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    RANGED = dg.BackfillPolicy.single_run()

if TYPE_CHECKING:
    # One partition's value, or a ranged run's values by partition key.
    PerPartition = T | dict[str, T]
else:

    class PerPartition:
        """Seen by Dagster as ``Any`` (it cannot type a union); each output's ``dagster_type``
        (``per_partition_type``) checks the value at run time."""

        def __class_getitem__(cls, item: object) -> object:
            return Any


@dataclass(frozen=True, order=True)
class Partition:
    symbol: str
    day: dt.date
    key: str


def _partition(key: str) -> Partition:
    symbol, day = symbol_and_date(key)
    if normalize_symbol(symbol) != symbol:
        raise SymbolError(
            f"partition symbol {symbol!r} is not normalised: add it as {normalize_symbol(symbol)}"
        )
    return Partition(symbol, day, key)


def range_tags(symbol: str, first: dt.date, last: dt.date) -> dict[str, str]:
    """The run tags of one ranged run over ``symbol``'s days ``first`` to ``last``, as the
    backfill daemon sets them."""
    return {
        RANGE_START_TAG: str(partition_key_for(symbol, first)),
        RANGE_END_TAG: str(partition_key_for(symbol, last)),
    }


def is_ranged(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> bool:
    """Whether this step covers a range of partitions (a backfill's run) rather than one."""
    op_context = getattr(context, "op_execution_context", context)
    return not op_context.has_partition_key


def partitions(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> list[Partition]:
    """The step's partitions in (symbol, date) order: oldest day first for each symbol."""
    op_context = getattr(context, "op_execution_context", context)
    if op_context.has_partition_key:
        return [_partition(str(op_context.partition_key))]
    return sorted(_partition(str(key)) for key in op_context.partition_keys)


def value_for(value: Any, partition: Partition, ranged: bool) -> Any:
    """An input's value for one partition: the value itself, or its entry in a ranged input."""
    if not ranged:
        return value
    try:
        return value[partition.key]
    except (KeyError, TypeError):
        raise ValueError(
            f"the ranged input has no value for {partition.key}: the IO manager loads one per "
            "partition of the range"
        ) from None


def each(
    context: dg.AssetExecutionContext,
    produce: Callable[[Partition], tuple[T, Mapping[str, Any]]],
) -> T | dict[str, T]:
    """Run ``produce`` for every partition of the step in order; each partition's materialization
    gets the metadata ``produce`` returned beside its value."""
    ranged = is_ranged(context)
    values: dict[str, T] = {}
    for partition in partitions(context):
        value, metadata = produce(partition)
        context.add_asset_metadata(dict(metadata), partition_key=partition.key)
        values[partition.key] = value
    if not ranged:
        return next(iter(values.values()))
    return values


@functools.cache
def per_partition_type(cls: type) -> dg.DagsterType:
    """A Dagster type accepting one ``cls`` value or ``{partition key: cls value}`` (one per
    class: Dagster type names are unique)."""

    def check(_: Any, value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(v, cls) for v in value.values())
        return isinstance(value, cls)

    return dg.DagsterType(
        type_check_fn=check,
        name=f"PerPartition[{cls.__name__}]",
        description=f"one {cls.__name__}, or one per partition of a ranged (backfill) run",
    )


MAX_LISTED = 20  # failing partitions named in a summary's metadata


def summarize(results: list[tuple[str, dg.AssetCheckResult]]) -> list[dg.AssetCheckResult]:
    """One result per check for a ranged run's ``(partition key, result)`` pairs: passed only if
    it passed on every partition, the failing ones named.

    A check result is two event-log writes (the event and the check's own table), so a ranged
    run reports each check once for its range instead of once per day (about 19 checks a day);
    each day's own result is still recorded on its artifact (table ``artifact_checks``).
    """
    grouped: dict[tuple[str, str], list[tuple[str, dg.AssetCheckResult]]] = {}
    for key, result in results:
        asset = dg.AssetKey.from_coercible(result.asset_key).to_user_string()
        grouped.setdefault((asset, str(result.check_name)), []).append((key, result))
    summaries = []
    for (asset, name), pairs in grouped.items():
        failed = [(key, r) for key, r in pairs if not r.passed]
        if failed:
            first_key, first = failed[0]
            severity = (dg.AssetCheckSeverity.ERROR
                        if any(r.severity == dg.AssetCheckSeverity.ERROR for _, r in failed)
                        else dg.AssetCheckSeverity.WARN)
            description = (
                f"{len(failed)} of {len(pairs)} partitions failed, first {first_key}: "
                f"{first.description or 'no description'}"
            )
        else:
            severity = pairs[0][1].severity
            description = (f"passed on all {len(pairs)} partitions ({pairs[0][0]} to "
                           f"{pairs[-1][0]}); last: {pairs[-1][1].description or 'passed'}")
        summaries.append(dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=not failed,
            severity=severity,
            description=description,
            metadata={
                "partitions": len(pairs),
                "failed": len(failed),
                "failed_partitions": dg.MetadataValue.json(
                    [key for key, _ in failed[:MAX_LISTED]]),
            },
        ))
    return summaries
