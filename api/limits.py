"""A request body limit, enforced before a route reads the body: 413 naming the limit."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuse bodies over `limit` bytes (`upload_limit` on paths ending in /upload).

    A declared Content-Length is checked at once. Otherwise (a chunked body) the body is read here, up to
    one byte past the limit, and handed on only when it fits: neither way can fill the server's memory.
    (Raising from inside the route's read would not do: FastAPI answers any failure there with 400.)
    """

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int) -> None:
        self.app, self.limit, self.upload_limit = app, limit, upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].endswith("/upload") else self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await _too_large(send, limit)
            else:
                await self.app(scope, receive, send)  # the server holds it to the declared length
            return
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(parts), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body: expected at most {limit} bytes, got more"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
