"""How signals are scored after the fact: the bracket's time exit and the bootstrap's size."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from trading_assets.evaluation.models import DEFAULT_EXIT_AFTER_SESSIONS


class EvaluationSettings(dg.ConfigurableResource):
    exit_after_sessions: int = Field(
        default=DEFAULT_EXIT_AFTER_SESSIONS, ge=1, le=250,
        description="EVAL_EXIT_AFTER_SESSIONS: a bracket neither stopped nor at target by then "
        "exits at that session's close",
    )
    bootstrap_resamples: int = Field(
        default=2000, ge=100, le=100_000,
        description="EVAL_BOOTSTRAP_RESAMPLES: resamples behind each 95 % confidence interval",
    )
    bootstrap_seed: int = Field(default=20_061, description="fixed, so a scorecard repeats")
