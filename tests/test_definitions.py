"""The code location loads, and its graph is the one SPEC.md describes."""

import dagster as dg

from trading_assets.definitions import ASSETS, TRACKING_ASSETS, build_definitions, defs
from trading_assets.environment import resources_from_environment
from trading_assets.evaluation.assets import SCORECARD_ASSETS

EXPECTED_EDGES = {
    ("market_data", "daily_chart"),
    ("market_data", "weekly_chart"),
    ("market_data", "llm_analysis"),
    ("daily_chart", "llm_analysis"),
    ("weekly_chart", "llm_analysis"),
    ("llm_analysis", "trading_signal"),
    ("trading_signal", "order"),
    ("market_data", "order"),
    ("order", "portfolio"),
}
# Not a SPEC asset: MLflow tracking (issue 6) reads all seven after the fact from the stores; one
# edge below portfolio, which comes after the other six, and nothing in the trading graph waits
# for it.
TRACKING_EDGES = {("portfolio", "mlflow_run")}
# The evaluation group (issue 12) reads bars after the decision; nothing in the trading graph
# depends on it.
EVALUATION_EDGES = {
    ("market_data", "signal_outcome"),
    ("llm_analysis", "signal_outcome"),
    ("trading_signal", "signal_outcome"),
    *(("signal_outcome", name) for name in SCORECARD_ASSETS),
}


def test_definitions_load_with_embedded_defaults(data_env: dict[str, str]) -> None:
    loaded = build_definitions(resources_from_environment(data_env))
    dg.Definitions.validate_loadable(loaded)
    assert loaded.resolve_job_def("trading_signals_job") is not None


def test_the_decorated_entry_point_loads() -> None:
    assert isinstance(defs(), dg.Definitions)


def test_seven_assets_with_spec_lineage_plus_tracking(data_env: dict[str, str]) -> None:
    loaded = build_definitions(resources_from_environment(data_env))
    graph = loaded.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert len(ASSETS) == 7 and [a.key.to_user_string() for a in TRACKING_ASSETS] == ["mlflow_run"]
    assert keys == {a.key.to_user_string() for a in [*ASSETS, *TRACKING_ASSETS]} | {
        "signal_outcome", *SCORECARD_ASSETS
    }
    edges = {
        (parent.to_user_string(), key.to_user_string())
        for key in graph.get_all_asset_keys()
        for parent in graph.get(key).parent_keys
    }
    assert edges == EXPECTED_EDGES | TRACKING_EDGES | EVALUATION_EDGES
    assert not any(parent == "mlflow_run" for parent, _ in edges)
    # Still after all seven, in every run that has it.
    mlflow_run = dg.AssetKey("mlflow_run")
    assert {a.key for a in ASSETS} <= graph.get_ancestor_asset_keys(mlflow_run)
    decision = {a.key.to_user_string() for a in ASSETS}
    evaluation = {"signal_outcome", *SCORECARD_ASSETS}
    assert not any(p in evaluation and c in decision for p, c in edges)  # no look-ahead
    job = loaded.resolve_job_def("trading_signals_job")
    assert not evaluation & {k.to_user_string() for k in job.asset_layer.selected_asset_keys}


def test_every_asset_but_the_scorecard_is_partitioned_by_symbol_and_day(
    data_env: dict[str, str],
) -> None:
    loaded = build_definitions(resources_from_environment(data_env))
    graph = loaded.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        if key.to_user_string() in SCORECARD_ASSETS:
            # Over every symbol and day at once: one scorecard, one equity curve (README).
            assert partitions is None
            continue
        assert isinstance(partitions, dg.MultiPartitionsDefinition)
        assert {d.name for d in partitions.partitions_defs} == {"date", "symbol"}
