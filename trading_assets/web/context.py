"""What every request handler needs: the settings, the stores, the Dagster runs; and links."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from io_managers.artifact_store import IMAGE_TYPES
from trading_assets.web.queries import Row
from trading_assets.web.runs import DagsterRuns
from trading_assets.web.schemas import Links
from trading_assets.web.settings import BrowserSettings
from trading_assets.web.stores import Stores


@dataclass
class Browser:
    settings: BrowserSettings
    stores: Stores
    runs: DagsterRuns
    secrets: frozenset[str]

    def scrub(self, text: str) -> str:
        """``text`` with every configured secret replaced (messages are already masked)."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def links(self, row: Row, base_url: str) -> Links:
        base = base_url.rstrip("/")
        artifact_id, run, experiment = row["id"], row["execution_id"], row["experiment_id"]
        return Links(
            self=f"{base}/api/artifacts/{artifact_id}",
            page=f"{base}/artifacts/{artifact_id}",
            download=f"{base}/api/artifacts/{artifact_id}/download",
            image=f"{base}/api/artifacts/{artifact_id}/image" if row["type"] in IMAGE_TYPES
            else None,
            dagster_run=self.settings.dagster_run_url(run) if run else None,
            mlflow_run=self.settings.mlflow_run_url(experiment, row["run_id"])
            if experiment and row["run_id"] else None,
        )

    def close(self) -> None:
        self.runs.close()
        self.stores.close()


def browser(request: Request) -> Browser:
    """The application's Browser (a FastAPI dependency)."""
    found: Browser = request.app.state.browser
    return found
