"""`BodyLimit`: a 413 for a request body over the service's limit, before it is read into memory.

A request that declares its size (Content-Length) over the limit is answered at once, unread. One that does
not (chunked) is counted as it streams in, and refused once the count passes the limit: the route reading
it gets a `BodyTooLargeError`, an `HTTPException` FastAPI passes on to the error handlers, so the client sees
the same 413. The message names the limit and the setting that changes it, and on a search route also the
query's own limit, the one a long query meets first.

The default, 1 MiB, leaves room for the longest query the default allows (32,768 characters, up to about
400 KB as JSON escapes) and for a batch of 1,000 events with ordinary ids.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1 << 20  # `create_app(max_body_bytes=...)`, `serve --max-body-bytes`


class BodyTooLargeError(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


def too_large_detail(limit: int, size: int | None, path: str, max_query_chars: int | None = None) -> str:
    """The 413's message: the limit, what was sent, the setting; the query's limit on a search route."""
    sent = f"this one is {size} bytes" if size is not None else "this one is longer than that"
    detail = f"the request body may be at most {limit} bytes (serve --max-body-bytes); {sent}"
    if max_query_chars is not None and path.rstrip("/").endswith("/search"):
        detail += f"; a search `query` may be at most {max_query_chars} characters (serve --max-query-chars)"
    return detail


class BodyLimit:
    """ASGI middleware refusing request bodies over `max_bytes` with a 413 whose `detail` names the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_query_chars: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_query_chars = max_query_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, too_large_detail(self.max_bytes, declared, path, self.max_query_chars))
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    detail = too_large_detail(self.max_bytes, None, path, self.max_query_chars)
                    raise BodyTooLargeError(detail)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLargeError as error:  # read outside a route, where no handler turned it into a 413
            if started:
                raise
            await _refuse(send, str(error.detail))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
