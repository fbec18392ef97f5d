"""Real servers for the resource tests (see tests/servers.py)."""

from tests.servers import postgres_url, s3_server

__all__ = ["postgres_url", "s3_server"]
