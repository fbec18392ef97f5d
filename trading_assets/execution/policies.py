"""How the assets that talk to a broker retry: network errors again, domain errors never."""

import dagster as dg

from resources.ibkr import IbkrError

# A dropped gateway or a pacing wait recovers in seconds to a minute: 10 s, 20 s, 40 s, +-jitter.
NETWORK_RETRY = dg.RetryPolicy(
    max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# Errors a retry cannot fix: a bad setting, an unknown symbol, a refused request. ValueError
# covers the project's configuration errors (BrokerConfigError, MarketDataError, SymbolError).
DOMAIN_ERRORS: tuple[type[Exception], ...] = (IbkrError, ValueError)
BROKER_POOL = "broker"


def no_retry(exc: Exception) -> dg.Failure:
    """A Dagster failure that the RetryPolicy leaves alone, with the original message."""
    return dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False)
