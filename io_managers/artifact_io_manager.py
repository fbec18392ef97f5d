"""The IO manager every asset uses: a thin Dagster facade over ``ArtifactStore``.

Each output becomes an object plus an ``artifacts`` row (every materialization is kept); each
input loads the newest artifact of the upstream asset for the same symbol-day partition, or,
when the upstream step ran in this very run, the value that step just stored (no second read).
"""

# No `from __future__ import annotations`: Dagster must see ResourceDependency[...] unquoted.
import datetime as dt
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from io_managers.artifacts import Artifacts
from io_managers.clearance import blocking_problem
from io_managers.thumbnail import png_thumbnail_markdown
from io_managers.validation import ArtifactValidationError
from sql.migrate import SCHEMA_ERRORS
from trading_assets.check_catalog import BLOCKING_CHECKS, fix_for
from trading_assets.evaluation.models import PlotImage, Scorecard
from trading_assets.models import ChartImage
from trading_assets.partitions import DATE_DIMENSION, SYMBOL_DIMENSION, symbol_and_date

# Values of assets over every symbol and day (not symbol-day partitioned).
_UNPARTITIONED_VALUES = (Scorecard, PlotImage)


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Persists every materialization to the object store and the artifacts table."""

    # The store (database, object store, spool, write policy): the same resource every asset,
    # check and command gets theirs from.
    artifacts: dg.ResourceDependency[Artifacts]
    # Where `make web` serves the artifact browser: each materialization links to its page.
    artifact_browser_url: str = "http://127.0.0.1:8000"

    # (run id, asset, partition) -> (artifact row, value) of what this run stored. With the
    # in-process executor every step of a run shares this object, so a downstream step takes
    # its upstream's value from memory: the same value the row points at, read back for free.
    _stored_this_run: dict[tuple[str, str, str], tuple[Any, object]] = PrivateAttr(
        default_factory=dict
    )

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        asset_name = context.asset_key.to_user_string()
        if obj is None:
            raise TypeError(
                f"asset {asset_name} returned None: every asset in this graph must return its "
                "typed value (MarketData, ChartImage, LlmAnalysis, TradingSignal, OrderDecision "
                "or PortfolioSnapshot) so it can be stored and loaded downstream"
            )
        # Only the current run's values are kept: a new run drops the previous one's.
        self._stored_this_run = {
            k: v for k, v in self._stored_this_run.items() if k[0] == context.run_id
        }
        if isinstance(obj, _UNPARTITIONED_VALUES) and not context.has_asset_partitions:
            day = obj.end if isinstance(obj, Scorecard) else obj.as_of
            context.add_output_metadata(self._store(context, asset_name, obj, None, day, None))
            return
        keys = _partition_keys(context, asset_name)
        if not _ranged(context):
            symbol, day, key = _symbol_day(keys[0], asset_name)
            context.add_output_metadata(self._store(context, asset_name, obj, symbol, day, key))
            return
        # A ranged (backfill) run: one artifact per partition, each partition's materialization
        # with its own artifact's metadata.
        if not isinstance(obj, dict) or set(obj) != set(keys):
            raise TypeError(
                f"asset {asset_name} ran for {len(keys)} partitions in one run and must return "
                "{partition key: value} for exactly those partitions (trading_assets/ranged.py: "
                f"each); it returned {type(obj).__name__}"
            )
        for key in sorted(keys, key=lambda k: symbol_and_date(k)):
            symbol, day, key = _symbol_day(key, asset_name)
            metadata = self._store(context, asset_name, obj[key], symbol, day, key)
            context.step_context.add_asset_metadata(
                metadata, asset_key=context.asset_key, partition_key=key
            )

    def _store(
        self,
        context: dg.OutputContext,
        asset_name: str,
        obj: object,
        symbol: str | None,
        day: dt.date,
        partition_key: str | None,
    ) -> dict[str, dg.MetadataValue]:
        """Write one value; returns the metadata its materialization shows."""
        # Rendered before storing: a PNG that PIL cannot open must fail before anything is kept.
        images = (ChartImage, PlotImage)
        thumbnail = png_thumbnail_markdown(obj.png) if isinstance(obj, images) else None
        try:
            result = self.artifacts.store(context.log).write_or_spool(
                obj,
                spool=self.artifacts.spool,
                asset_name=asset_name,
                symbol=symbol,
                partition_key=partition_key,
                partition_date=day,
                job_name=context.job_name,
                run_id=context.run_id,
                step_key=context.step_key,
            )
        except (*SCHEMA_ERRORS, ArtifactValidationError) as exc:
            # A retry cannot migrate the database or fix the value: fail now (not after the
            # asset's RetryPolicy waits), with the message that names the fix.
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        record = result.record
        self._stored_this_run[(context.run_id, asset_name, partition_key or "")] = (record, obj)
        metadata: dict[str, dg.MetadataValue] = {
            "artifact_type": dg.MetadataValue.text(record.type),
            "object_uri": object_uri_metadata(record.object_uri),
            "size_bytes": dg.MetadataValue.int(record.size_bytes),
            "content_hash": dg.MetadataValue.text(record.content_hash),
            "spooled": dg.MetadataValue.bool(result.spooled is not None),
        }
        if record.id is not None:
            metadata["artifact_id"] = dg.MetadataValue.int(record.id)
            metadata["artifact_page"] = dg.MetadataValue.url(
                f"{self.artifact_browser_url.rstrip('/')}/artifacts/{record.id}"
            )
        if result.spooled is not None and result.spool_path is not None:
            # Not in the stores yet: the `<asset>_stored` check fails until it is reconciled.
            metadata["spool_entry"] = dg.MetadataValue.path(str(result.spool_path))
            metadata["spool_reason"] = dg.MetadataValue.text(result.spooled.reason)
        if thumbnail is not None:
            metadata["thumbnail"] = dg.MetadataValue.md(thumbnail)
        # No log line: the materialization's metadata says where it went, and every log line is
        # one more event-log write per step.
        return metadata

    def load_input(self, context: dg.InputContext) -> object:
        asset_name = context.asset_key.to_user_string()
        keys = _partition_keys(context, asset_name)
        blocking = _blocking_checks(context)
        if not _ranged(context):
            value, record = self._load(context, asset_name, keys[0], blocking)
            if record is not None:
                # Records which stored artifact this run read: the audit trail of inputs from
                # other runs.
                context.add_input_metadata(_input_metadata(record))
            return value
        # A ranged run reads every partition of the range; inputs this run wrote come from
        # memory, the rest from the stores (their ids listed once, for the audit trail).
        values: dict[str, object] = {}
        read: list[int] = []
        for key in keys:
            values[key], record = self._load(context, asset_name, key, blocking)
            if record is not None and record.id is not None:
                read.append(record.id)
        if read:
            context.add_input_metadata({"artifact_ids": dg.MetadataValue.json(sorted(read))})
        return values

    def _load(
        self, context: dg.InputContext, asset_name: str, key: str, blocking: tuple[str, ...]
    ) -> tuple[object, Any]:
        """One partition's value, and the stored row it was read from (None: from this run)."""
        _, _, partition_key = _symbol_day(key, asset_name)
        cached = self._stored_this_run.get((_run_id(context), asset_name, partition_key))
        if cached is not None:
            # Written by this run: its materialization already names the artifact, so no
            # input metadata (each would be one more event-log write).
            self._require_cleared(cached[0], blocking)
            return cached[1], None
        store = self.artifacts.store()
        record = store.latest_record(asset_name, partition_key)
        self._require_cleared(record, blocking)
        value = store.load(record)
        assert record.id is not None
        return value, record

    def _require_cleared(self, record: Any, blocking: tuple[str, ...]) -> None:
        """Fail the consuming step, without retries, unless the artifact passed its blocking
        checks (the newest artifact only: an older one that passed is not a stand-in)."""
        if not blocking:
            return
        asset = record.step_name or record.name
        problem = blocking_problem(
            record, self.artifacts.database.check_results(record), blocking, fix_for(asset)
        )
        if problem is not None:
            raise dg.Failure(description=problem, allow_retries=False)


def object_uri_metadata(uri: str) -> dg.MetadataValue:
    """A link only where a browser can follow one: a file:// or s3:// object is text to copy
    (a browser opens neither; the artifact_page link shows the artifact)."""
    if uri.startswith(("http://", "https://")):
        return dg.MetadataValue.url(uri)
    return dg.MetadataValue.text(uri)


def _input_metadata(record: Any) -> dict[str, dg.MetadataValue]:
    return {
        "artifact_id": dg.MetadataValue.int(record.id),
        "object_uri": object_uri_metadata(record.object_uri),
        "written_by_run": dg.MetadataValue.text(record.execution_id or ""),
    }


def _ranged(context: dg.OutputContext | dg.InputContext) -> bool:
    """Whether the step being run covers a range of partitions (trading_assets/ranged.py)."""
    try:
        return not context.step_context.has_partition_key
    except dg.DagsterInvariantViolationError:
        return False  # a context built outside a run (tools, tests): one partition


def _blocking_checks(context: dg.InputContext) -> tuple[str, ...]:
    """The upstream asset's blocking checks whose results the check steps record on artifacts
    (``check_catalog``), as far as the definitions being run declare them.

    A graph without those checks (a test's, say) has nothing to enforce. The order's risk gates
    run inside the order step and decide whether it is placed: they are not recorded here.
    """
    recorded = BLOCKING_CHECKS.get(context.asset_key.to_user_string(), ())
    try:
        graph = context.step_context.job_def.asset_layer.asset_graph
    except dg.DagsterInvariantViolationError:
        return recorded  # a context built outside a run (tools): the project's own list
    # The whole code location's graph: a run of downstream assets only (a subset job) does not
    # carry the upstream asset's checks in its own.
    graph = getattr(graph, "source_asset_graph", graph)
    if not recorded or not graph.has(context.asset_key):
        return ()
    declared = {k.name for k in graph.get(context.asset_key).check_keys}
    return tuple(name for name in recorded if name in declared)


def _run_id(context: dg.InputContext) -> str:
    try:
        return context.step_context.run_id
    except dg.DagsterInvariantViolationError:
        return ""  # a context built outside a run (tools, tests): always read the stores


def _partition_keys(context: dg.OutputContext | dg.InputContext, asset_name: str) -> list[str]:
    if not context.has_asset_partitions:
        raise ValueError(
            f"asset {asset_name} is not partitioned, but the artifact IO manager stores values "
            "per symbol and trading day: give it partitions_def=symbol_day "
            "(trading_assets/partitions.py)"
        )
    partitions_def = context.asset_partitions_def
    dimensions = {d.name for d in getattr(partitions_def, "partitions_defs", ())}
    if dimensions != {DATE_DIMENSION, SYMBOL_DIMENSION}:
        raise ValueError(
            f"asset {asset_name} is not partitioned by symbol and day: the artifact IO manager "
            f"needs a MultiPartitionsDefinition with dimensions '{DATE_DIMENSION}' and "
            f"'{SYMBOL_DIMENSION}' (trading_assets/partitions.py: symbol_day)"
        )
    if not _ranged(context):
        return [str(context.asset_partition_key)]
    return [str(k) for k in context.asset_partition_keys]


def _symbol_day(key: str, asset_name: str) -> tuple[str, dt.date, str]:
    """(symbol, trading day, key string) of the symbol-day partition being stored or loaded."""
    parts = key.split("|")
    dimensions = dict(zip((DATE_DIMENSION, SYMBOL_DIMENSION), parts, strict=False))
    if len(parts) != 2:
        raise ValueError(
            f"asset {asset_name} partition {key!r} is not a symbol-day partition: the artifact "
            f"IO manager needs a MultiPartitionsDefinition with dimensions '{DATE_DIMENSION}' "
            f"and '{SYMBOL_DIMENSION}' (trading_assets/partitions.py: symbol_day)"
        )
    try:
        symbol, day = symbol_and_date(key)
    except ValueError as exc:
        raise ValueError(
            f"asset {asset_name} partition {key}: the {DATE_DIMENSION} key "
            f"{dimensions[DATE_DIMENSION]!r} is not a YYYY-MM-DD date"
        ) from exc
    return symbol, day, key
