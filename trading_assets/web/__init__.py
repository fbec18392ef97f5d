"""The artifact browser: a read-only FastAPI application (REST API and server-rendered pages)
over the artifacts table and object store, started by ``trading-signals serve``."""
