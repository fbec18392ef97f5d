"""Alerts: a Slack-compatible webhook when ALERT_WEBHOOK_URL is set, the log otherwise."""

import json
import logging
import urllib.error
import urllib.request

import dagster as dg
from pydantic import Field
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter


class NotificationError(RuntimeError):
    """The webhook did not take the message after the retries."""


class _Retryable(Exception):
    pass


class WebhookNotifier(dg.ConfigurableResource):
    webhook_url: str | None = Field(default=None, description="Slack-compatible incoming webhook")
    timeout_seconds: float = Field(default=5.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)

    def notify(self, text: str, log: logging.Logger | dg.DagsterLogManager) -> bool:
        """Send ``text``; returns True if a webhook took it, False if it was only logged."""
        if not self.webhook_url:
            log.warning(f"ALERT_WEBHOOK_URL is not set; alert: {text}")
            return False
        self._post({"text": text})
        return True

    def _post(self, payload: dict[str, str]) -> None:
        body = json.dumps(payload).encode()

        @retry(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=0.5, max=8),
            reraise=True,
        )
        def send() -> None:
            request = urllib.request.Request(
                self.webhook_url or "", data=body, headers={"content-type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                if exc.code >= 500 or exc.code == 429:
                    raise _Retryable(f"HTTP {exc.code}") from exc
                raise NotificationError(
                    f"the alert webhook refused the message (HTTP {exc.code}): check "
                    "ALERT_WEBHOOK_URL"
                ) from exc
            except (urllib.error.URLError, TimeoutError) as exc:
                raise _Retryable(str(getattr(exc, "reason", exc))) from exc

        try:
            send()
        except _Retryable as exc:
            # The URL can carry a token: name only that it failed, never the URL.
            raise NotificationError(
                f"the alert webhook did not answer after {self.attempts} attempts ({exc})"
            ) from exc
