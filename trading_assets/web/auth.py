"""The access token: every request carries ``Authorization: Bearer <token>``, or the cookie a
page request with ``?token=<token>`` sets (then redirected to the same URL without it)."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qsl, urlencode

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "artifact_browser"
_UNAUTHORIZED = (
    "this server needs its access token (ARTIFACT_BROWSER_TOKEN): send the header "
    "'Authorization: Bearer <token>', or open /?token=<token> once in the browser"
)


def cookie_value(token: str) -> str:
    """What the cookie holds: derived from the token, not the token itself."""
    return hmac.new(token.encode(), b"artifact-browser-cookie", hashlib.sha256).hexdigest()


class TokenAuth:
    """Pure ASGI middleware (no buffering of responses): 401 unless the token is presented."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._bearer = f"Bearer {token}".encode()
        self._token = token.encode()
        self._cookie = cookie_value(token)

    def _presented(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization" and hmac.compare_digest(value, self._bearer):
                return True
            if name == b"cookie":
                found = cookie_parser(value.decode("latin-1")).get(COOKIE, "")
                if hmac.compare_digest(found.encode(), self._cookie.encode()):
                    return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._presented(scope):
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        page = not scope["path"].startswith("/api/")
        if page and given and hmac.compare_digest(given[-1].encode(), self._token):
            # Into a cookie, out of the address bar (and of later access-log lines).
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            await _respond(send, 303, b"", [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", f"{COOKIE}={self._cookie}; HttpOnly; SameSite=Strict; "
                                "Path=/".encode()),
            ])
            return
        body = json.dumps({"error": _UNAUTHORIZED}).encode()
        await _respond(send, 401, body, [
            (b"content-type", b"application/json"),
            (b"www-authenticate", b'Bearer realm="artifact browser"'),
        ])


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> (
    None
):
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
