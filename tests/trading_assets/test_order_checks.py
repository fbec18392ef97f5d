"""What "Execute all" on the order asset's Checks tab (Dagster UI) can launch.

Dagster 1.13's UI offers a check on its own only when the check is its own execution unit
(``canExecuteIndividually``); the risk gates are declared by the order asset itself, so they run
only with the order. What the button does launch is ``order_stored``, without a partition.
"""

import dagster as dg
import pytest

from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.execution.assets import RISK_GATE_CHECKS
from trading_assets.partitions import symbol_day

ORDER = dg.AssetKey("order")


def _defs(env: dict[str, str]) -> dg.Definitions:
    return build_definitions(resources_from_environment(env))


def test_the_risk_gates_cannot_be_executed_without_the_order(data_env: dict[str, str]) -> None:
    defs = _defs(data_env)
    graph = defs.resolve_asset_graph()
    for spec in RISK_GATE_CHECKS:
        assert spec.partitions_def == symbol_day
        # One execution unit with the order: the UI's REQUIRES_MATERIALIZATION, left out of
        # "Execute all" ("This check cannot execute without materializing the asset").
        assert graph.get_execution_set_identifier(spec.key) is not None
        assert ORDER in graph.get_execution_set_asset_and_check_keys(spec.key)
    job = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(dg.DagsterInvalidSubsetError, match="does not support subsetting"):
        job.get_subset(
            asset_selection=set(), asset_check_selection={s.key for s in RISK_GATE_CHECKS}
        )


def test_execute_all_on_the_orders_checks_neither_fails_nor_judges_anything(
    data_env: dict[str, str], instance: dg.DagsterInstance
) -> None:
    defs = _defs(data_env)
    graph = defs.resolve_asset_graph()
    launchable = {
        key for key in graph.get(ORDER).check_keys
        if graph.get_execution_set_identifier(key) is None
    }
    assert launchable == {dg.AssetCheckKey(ORDER, "order_stored")}
    # As the button launches it: checks only, no asset, no partition.
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection=launchable
    )
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success  # no failed run, so no failure alert
    assert result.get_asset_check_evaluations() == []
