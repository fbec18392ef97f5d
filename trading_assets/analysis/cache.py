"""Replays cost nothing: a stored analysis with the same cache key is reused, not re-asked.

The cache is the artifacts table itself. Every llm_analysis artifact records its ``cache_key``
(sha256 of provider, model, prompt and image hashes); the prompt names the symbol and day, so a
hit can only be among that partition's own llm rows. Nothing extra to keep in sync or lose.
"""

from __future__ import annotations

from io_managers.artifact_store import ArtifactStore
from trading_assets.analysis.request import AnalysisRequest
from trading_assets.models import LlmAnalysis

ASSET_NAME = "llm_analysis"
# Newest first; a partition re-analysed more often than this just misses the cache.
LOOKBACK = 50


def find_cached(store: ArtifactStore, request: AnalysisRequest) -> LlmAnalysis | None:
    """The newest valid stored analysis for ``request``, replayed (cached, cost 0), or None."""
    key = request.cache_key
    rows = store.database.query(
        symbol=request.symbol,
        partition_date=request.as_of,
        step_name=ASSET_NAME,
        type="llm",
        limit=LOOKBACK,
    )
    for row in rows:
        provider = (row.artifact_metadata or {}).get("provider")
        if row.model_name != request.model or provider != request.provider:
            continue
        # A corrupt candidate fails loudly (CorruptArtifactError names it); fresh=true skips it.
        stored = store.load(row)
        if not isinstance(stored, LlmAnalysis) or stored.cache_key != key or stored.error:
            continue
        origin = stored.cached_from or f"artifact #{row.id} (run {row.execution_id})"
        return stored.model_copy(
            update={
                "cached": True,
                "cost_usd": 0.0,
                "cached_from": origin,
                "prompt_version": request.prompt_version,
                "indicators": request.indicators,
            }
        )
    return None
