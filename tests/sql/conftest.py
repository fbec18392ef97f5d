"""A throwaway PostgreSQL database per test (see tests/servers.py: skips without a server,
fails under CI=true)."""

from tests.servers import postgres_url

__all__ = ["postgres_url"]
