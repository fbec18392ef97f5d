"""Asset checks: what each one guards is in its name. Blocking checks stop the order.

The checks run as four steps, one per stage of the graph (market data, charts, signal,
execution). Each step reads its assets' newest artifacts back from the stores, which is the
``<asset>_stored`` check, and applies the value's rules to what was read: the checks judge what
downstream steps and people will actually load. A step per check would write about forty more
event-log entries per run. Each check is still its own check in the UI, with its own result,
severity and blocking flag, and materializing a single asset runs just that asset's checks.
Each rule is a row of a table below (its name, what it guards, its problems and its note); the
stage steps are built from those tables.
"""

import datetime as dt
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from io_managers.artifact_store import ArtifactStore
from io_managers.artifacts import Artifacts
from io_managers.errors import CorruptArtifactError
from io_managers.resilience import first_line, is_transient
from io_managers.spool import ArtifactSpool
from resources.database import ArtifactRecord, CheckRecord
from resources.trading_policy import TradingPolicy
from trading_assets import quality
from trading_assets.check_catalog import is_blocking
from trading_assets.partitions import symbol_day
from trading_assets.ranged import is_ranged, partitions, summarize

# Partitioned checks are a Dagster preview; uv.lock pins the version they were tested on, and
# without them a check's result would not belong to the symbol-day it checked.
warnings.filterwarnings(
    "ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec"
)

STORED_DESCRIPTION = "the newest artifact row and its object both exist, hash intact"


def _spec(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    # Blocking or not is said once, in check_catalog: the IO manager enforces the same list.
    return dg.AssetCheckSpec(
        name,
        asset=asset,
        description=description,
        blocking=is_blocking(asset, name),
        partitions_def=symbol_day,
    )


def _stored_spec(asset: str) -> dg.AssetCheckSpec:
    return _spec(f"{asset}_stored", asset, STORED_DESCRIPTION)


@dataclass(frozen=True)
class RuleInputs:
    """What a rule may need besides the value: the partition's day and the trading policy."""

    day: dt.date
    min_risk_reward: float


@dataclass(frozen=True)
class Rule:
    """One check of one asset's value: its problems (none: passed) and its note when it passes."""

    name: str
    asset: str
    description: str
    problems: Callable[[Any, RuleInputs], list[str]]
    passed: Callable[[Any, RuleInputs], str]
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    def spec(self) -> dg.AssetCheckSpec:
        return _spec(self.name, self.asset, self.description)


WARN = dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class StoredRead:
    """What a stage read of an asset: the artifact judged (row, or spooled row), its value
    (None when it cannot be used) and why not (empty: intact)."""

    record: ArtifactRecord | None
    value: object | None
    problems: list[str]


def read_stored(
    store: ArtifactStore, asset: str, partition_key: str, spool: ArtifactSpool | None = None
) -> StoredRead:
    """The newest artifact of ``asset`` for the partition, read back once and checked."""
    # Only entries meant for these stores: one spooled under another configuration (another
    # database or bucket) is reported by `order` and `reconcile`, and does not block this one.
    waiting = [
        e for e in spool.pending_for(partition_key, store.target()) if e.record.step_name == asset
    ] if spool is not None else []
    if waiting:
        # Newer than anything in the stores: the stores do not hold this materialization yet.
        return StoredRead(waiting[-1].record, None, [
            f"{asset} {partition_key} is only in the local spool ({len(waiting)} entry, "
            f"{waiting[-1].reason}); run `trading-signals reconcile` once the stores are back"
        ])
    record = None
    try:
        record = store.database.latest(asset, partition_key)
        if record is None:
            return StoredRead(None, None, [f"no artifact row for {asset} {partition_key}"])
        return StoredRead(record, store.load(record), [])
    except CorruptArtifactError as exc:
        return StoredRead(record, None, [str(exc)])
    except Exception as exc:
        if not is_transient(exc):
            raise
        # A store that is down is exactly what this check reports: a failed check, with why.
        return StoredRead(record, None, [
            f"cannot read {asset} {partition_key} back: {type(exc).__name__}: {first_line(exc)}"
        ])


class _Stage:
    """One stage's checks in one step: each selected asset's value is read back once from the
    stores (which is the storage check), then the value's own rules run on it. Every result is
    also recorded on the artifact it judged, for the IO manager of any later consumer."""

    def __init__(
        self, context: dg.AssetCheckExecutionContext, artifacts: Artifacts, partition_key: str
    ) -> None:
        self.context = context
        self.store = artifacts.store(context.log)
        self.spool = artifacts.spool
        self.partition_key = partition_key
        self.selected = {
            (key.asset_key.to_user_string(), key.name) for key in context.selected_asset_check_keys
        }
        self.reads: dict[str, StoredRead] = {}
        self.results: list[CheckRecord] = []

    def _result(
        self,
        name: str,
        asset: str,
        problems: Sequence[str],
        *,
        passed_note: str,
        severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    ) -> dg.AssetCheckResult:
        description = "; ".join(problems) if problems else passed_note
        record = self.reads[asset].record
        if record is not None:
            self.results.append(CheckRecord(
                write_key=record.write_key, artifact_id=record.id, asset=asset,
                partition_key=self.partition_key, check_name=name,
                blocking=is_blocking(asset, name), passed=not problems, description=description,
                execution_id=self.context.run.run_id, checked_at=dt.datetime.now(dt.UTC),
            ))
        return dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=not problems,
            severity=severity,
            description=description,
            metadata={"problems": len(problems)},
        )

    def read(self, asset: str) -> Generator[dg.AssetCheckResult, None, object | None]:
        """Yields the ``<asset>_stored`` result; returns the value (None if unreadable)."""
        read = self.reads[asset] = read_stored(self.store, asset, self.partition_key, self.spool)
        if (asset, f"{asset}_stored") in self.selected:
            yield self._result(
                f"{asset}_stored",
                asset,
                read.problems,
                passed_note=f"{asset} {self.partition_key} row and object intact",
            )
        return read.value

    def rule(
        self, rule: Rule, value: object | None, inputs: RuleInputs
    ) -> Iterator[dg.AssetCheckResult]:
        if (rule.asset, rule.name) not in self.selected:
            return
        if value is None:
            # Not evaluated: the reason is the storage check's, repeated so this one says it too.
            # A warning, so the first ERROR a person reads is the storage check's own.
            why = "; ".join(self.reads[rule.asset].problems) or "its artifact is not intact"
            problems = [f"not evaluated: {rule.asset} cannot be read from the stores ({why})"]
            yield self._result(
                rule.name, rule.asset, problems, passed_note="", severity=WARN
            )
            return
        problems = rule.problems(value, inputs)
        note = "" if problems else rule.passed(value, inputs)
        yield self._result(
            rule.name, rule.asset, problems, passed_note=note, severity=rule.severity
        )

    def wants(self, asset: str) -> bool:
        return any(selected_asset == asset for selected_asset, _ in self.selected)

    def record(self) -> None:
        """Store the step's results on the artifacts they judged (after its last result)."""
        try:
            self.store.database.record_checks(self.results)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Fails closed: a consumer in a later run finds no result and refuses the artifact.
            self.context.log.warning(
                f"could not record {len(self.results)} check result(s) for {self.partition_key} "
                f"in {self.store.database.masked_url()} ({type(exc).__name__}: "
                f"{first_line(exc)}); later runs will refuse these artifacts until their checks "
                "run again"
            )


MARKET_DATA_RULES = (
    Rule("market_data_enough_bars", "market_data", "enough daily bars for SMA 200",
         lambda data, _: quality.too_few_bars(data), lambda data, _: f"{len(data.bars)} bars",
         severity=WARN),
    Rule("market_data_no_missing_days", "market_data", "a bar for every exchange session",
         lambda data, _: quality.missing_sessions(data), lambda *_: "no session missing"),
    Rule("market_data_ohlc_consistent", "market_data", "low <= open, close <= high; volume >= 0",
         lambda data, _: quality.inconsistent_ohlc(data), lambda *_: "every bar consistent"),
    Rule("market_data_not_stale", "market_data", "the last bar is the partition's day",
         lambda data, at: quality.stale(data, at.day), lambda _, at: f"last bar {at.day}"),
)
CHART_RULES = tuple(
    Rule(f"{asset}_image_size", asset, "a PNG of the expected size was stored",
         lambda chart, _: quality.chart_problems(chart),
         lambda chart, _: f"{chart.width}x{chart.height} PNG")
    for asset in ("daily_chart", "weekly_chart")
)
SIGNAL_RULES = (
    Rule("trading_signal_levels", "trading_signal",
         "entry, stop and target on the right sides; risk/reward at the minimum",
         lambda signal, at: quality.signal_level_problems(signal, at.min_risk_reward),
         lambda signal, _: f"{signal.action.value} levels valid"),
)


def _stage_check(
    name: str, assets: Sequence[str], rules: Sequence[Rule]
) -> dg.AssetChecksDefinition:
    """One step that reads each of ``assets`` back once (its ``<asset>_stored`` check) and runs
    the rules on what it read."""

    @dg.multi_asset_check(
        name=name,
        specs=[*(_stored_spec(asset) for asset in assets), *(rule.spec() for rule in rules)],
        can_subset=True,
    )
    def _check(
        context: dg.AssetCheckExecutionContext,
        policy: TradingPolicy,
        artifacts: Artifacts,
    ) -> Iterator[dg.AssetCheckResult]:
        op_context = context.op_execution_context
        if not op_context.has_partition_key and not op_context.has_partition_key_range:
            # "Execute all" on an asset's checks (Dagster UI) runs them without a partition:
            # there is no symbol-day artifact to judge, and nothing to fail or alert about.
            context.log.warning(
                f"{name} judges one symbol-day's stored artifacts, and this run has no partition: "
                "nothing was checked. Pick a partition (or materialize the asset for one): its "
                "checks run with it"
            )
            return
        ranged = is_ranged(context)
        judged: list[tuple[str, dg.AssetCheckResult]] = []
        for partition in partitions(context):
            stage = _Stage(context, artifacts, partition.key)
            inputs = RuleInputs(day=partition.day, min_risk_reward=policy.min_risk_reward)
            results = _judge(stage, assets, rules, inputs)
            if ranged:
                judged += [(partition.key, r) for r in results]
            else:
                yield from results
            stage.record()
        if ranged:
            # A ranged (backfill) run: each check once for the range, each day's result on its
            # artifact (trading_assets/ranged.py: summarize).
            yield from summarize(judged)

    return _check


def _judge(
    stage: _Stage, assets: Sequence[str], rules: Sequence[Rule], inputs: RuleInputs
) -> Iterator[dg.AssetCheckResult]:
    for asset in assets:
        if stage.wants(asset):
            value = yield from stage.read(asset)
            for rule in (r for r in rules if r.asset == asset):
                yield from stage.rule(rule, value, inputs)


ASSET_CHECKS = [
    _stage_check("market_data_checks", ["market_data"], MARKET_DATA_RULES),
    _stage_check("chart_checks", ["daily_chart", "weekly_chart"], CHART_RULES),
    _stage_check("signal_checks", ["llm_analysis", "trading_signal"], SIGNAL_RULES),
    _stage_check("execution_stored_checks", ["order", "portfolio"], ()),
]
