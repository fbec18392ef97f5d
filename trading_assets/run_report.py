"""What a command-line run says: the reason a run stopped in one line, and the run's warnings.

Dagster's console logger prints every engine event (a stack trace per failed step, an ERROR line
per step not executed). The command line prints instead the first thing that stopped the run (a
failed blocking check with its own description and the fix, or a step's own error) and the
warnings the assets logged; ``--verbose`` or the run's page in the Dagster UI has the full log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import dagster as dg

from trading_assets.check_catalog import fix_for
from trading_assets.errors import root_cause_message
from trading_assets.tags import RANGE_START_TAG

CLI_LOGGER = "cli"
# The summary of a failed check step: the check's own evaluation, just before it, says why.
_CHECK_STEP_SUMMARY = "DagsterAssetCheckFailedError"


def first_failure(result: Any) -> str:
    """The first thing that stopped ``result``'s run, as one line with what to do."""
    # A ranged (backfill) run judges many days: say which one failed.
    ranged = RANGE_START_TAG in result.dagster_run.tags
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if (
                not evaluation.passed
                and evaluation.blocking
                and evaluation.severity == dg.AssetCheckSeverity.ERROR
            ):
                asset = evaluation.asset_key.to_user_string()
                why = (evaluation.description or "no description").strip().splitlines()[0]
                on = f" on {evaluation.partition}" if ranged and evaluation.partition else ""
                return f"check {evaluation.check_name} failed{on}: {why}; {fix_for(asset)}"
        elif event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            if error is not None and error.cls_name == _CHECK_STEP_SUMMARY:
                continue
            message = root_cause_message(error).splitlines()[0]
            return f"step {event.step_key} failed: {message}"
    return "the run failed before any step; see its log in the Dagster UI"


def quiet_run_config(verbose: bool = False) -> dict[str, Any]:
    """The loggers of a command-line run: the assets' warnings only, or Dagster's full log."""
    if verbose:
        return {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
    return {"loggers": {CLI_LOGGER: {}}}


class _Warnings(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", {}) or {}
        # Engine events (step failures with their traces, "Not executing" lines) are left to the
        # summary; what an asset itself warned about is printed, one line each.
        if record.levelno != logging.WARNING or meta.get("dagster_event") is not None:
            return
        step = meta.get("step_key") or "run"
        message = str(meta.get("orig_message") or record.getMessage()).strip()
        print(f"  warning ({step}): {message}", file=sys.stderr, flush=True)


@dg.logger(description="The command line's logger: asset warnings, one line each, to stderr.")
def cli_logger(_: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("trading_signals.cli_run", level=logging.WARNING)
    logger.addHandler(_Warnings())
    return logger
