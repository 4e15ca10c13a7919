"""A guard around the web server's upload route: a malformed upload gets a 400 with a sentence, not a 500.

Gradio's upload route fails with an internal error on some malformed multipart bodies, for
instance a part of the ``files`` field with an empty file name (it then arrives as a plain form
field, not a file). The guard turns such a failure of the upload route, before any response has
started, into a 400 that says what to send instead. Every other request passes untouched.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

UPLOAD_PATH = re.compile(r".*/upload/?$")
MESSAGE = ("The upload could not be read: send each image as a file part of the 'files' field with a file "
           "name (for example image.png).")
# Failures that describe the request, not the server: anything else still surfaces as a server error.
MALFORMED = (TypeError, ValueError, KeyError, UnicodeDecodeError)

log = logging.getLogger(__name__)


class UploadGuard:
    """ASGI middleware: a malformed request to the upload route is refused with a message."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not UPLOAD_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except MALFORMED as error:
            if started:
                raise
            log.info("refused a malformed upload: %r", error)
            await refuse(send, MESSAGE)


async def refuse(send: Send, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
