"""Every error as ``{"error": "..."}`` (an HTML page for a browser's page request): a message,
never a stack trace, never a secret."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from trading_assets.web.errors import BrowserError

_LOG = logging.getLogger("trading_signals.web")


def _wants_page(request: Request) -> bool:
    path = request.url.path
    api = path.startswith("/api/") or path in ("/openapi.json", "/docs")
    return not api and "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    browser = getattr(request.app.state, "browser", None)
    text = browser.scrub(message) if browser is not None else message
    if _wants_page(request):
        templates = request.app.state.templates
        return templates.TemplateResponse(
            request, "error.html", {"status": status, "message": text}, status_code=status,
            headers=headers,
        )
    return JSONResponse({"error": text}, status_code=status, headers=headers)


def _parameter(location: tuple[Any, ...]) -> str:
    # ("query", "limit") -> limit; a path parameter the same; a body never occurs (GET only).
    names = [str(p) for p in location[1:]] or [str(p) for p in location]
    return ".".join(names)


def validation_lines(exc: RequestValidationError) -> str:
    """One line per bad parameter: ``limit: Input should be ... (got '0')``."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        name = _parameter(tuple(error.get("loc", ())))
        got = error.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
        lines.setdefault(name, f"{name}: {error.get('msg', 'invalid')}{shown}")
    return "\n".join(lines.values())


def install(app: FastAPI) -> None:
    @app.exception_handler(BrowserError)
    async def browser_error(request: Request, exc: BrowserError) -> Response:
        if exc.status >= 500:
            _LOG.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 422, validation_lines(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = (
                f"no such page or endpoint: {request.url.path} (the API is under /api, "
                "documented at /docs)"
            )
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed: this server is read-only (GET only)"
        return error_response(request, exc.status_code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette raises it again after this response, so the server logs the traceback; the
        # client gets the message only.
        return error_response(
            request, 500,
            f"internal error ({type(exc).__name__}) serving {request.url.path}: the server's log "
            "has the details",
        )
