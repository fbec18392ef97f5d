"""An order never goes out while artifacts of its partition are only in the local spool."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from io_managers.artifact_store import ArtifactStore
from io_managers.resilience import WritePolicy
from tests.conftest import TRADING_DAY
from tests.io_managers import examples
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import partition_key_for

PARTITION = partition_key_for("TSLA", TRADING_DAY)


def test_order_alone_refuses_to_trade_on_a_partition_with_spooled_artifacts(
    tmp_path: Path, data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    instance.add_dynamic_partitions("symbol", ["TSLA"])
    # The inputs, stored; no order yet (one placed would simply be returned again).
    paused = build_definitions(resources_from_environment({**data_env, "TRADING_ENABLED": "false"}))
    first = paused.resolve_job_def("trading_signals_job").execute_in_process(
        partition_key=PARTITION, instance=instance
    )
    assert first.success and first.output_for_node("order").placed is False
    resources = resources_from_environment(data_env)
    defs = build_definitions(resources)

    # A later write for this partition could not reach the object store and waits in the spool.
    def refuse(*_: object, **__: object) -> str:
        raise PermissionError("the object folder is read-only")

    object_store = resources["object_store"]
    down = ArtifactStore(
        resources["artifact_db"], object_store, policy=WritePolicy(attempts=1, timeout_seconds=5)
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(object_store), "put", refuse)
        spooled = down.write_or_spool(
            examples.signal(TRADING_DAY), spool=resources["spool"], asset_name="trading_signal",
            symbol="TSLA", partition_key=str(PARTITION), partition_date=TRADING_DAY,
            job_name="trading_signals_job", run_id="later-run", step_key="trading_signal",
        )
    assert spooled.spooled is not None and spooled.spooled.target == down.target()

    # "Materialize selected" on order alone: its inputs load from the stores, the checks of
    # trading_signal do not run, so the order step itself must refuse.
    only_order = dg.materialize(
        [*defs.assets],  # type: ignore[list-item]
        selection="order",
        partition_key=str(PARTITION),
        resources=resources,
        instance=instance,
    )
    decision = only_order.output_for_node("order")
    assert decision.placed is False
    assert decision.reason.startswith("not traded: 1 artifact(s) of this partition are only in")
    assert "trading_signal" in decision.reason and "trading-signals reconcile" in decision.reason
