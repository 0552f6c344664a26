"""One body-size limit for every route: a pure ASGI middleware that refuses early and counts."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from priorauth.api.responses import outcome_response

FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


class BodyTooLarge(HTTPException):
    """413, raised from `receive` once a streamed body passes the limit.

    An HTTPException, so the app's own handler answers it with an OperationOutcome
    wherever the body is being read (a route, a dependency, the form parser).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than the limit of {limit} bytes")


class BodyLimit:
    """Refuse a body over the limit: at once when Content-Length says so, else when it streams past.

    Nothing else in the app buffers more than the limit: the declared size is checked
    before the app runs (no authentication, no parsing, no byte read), and a chunked
    body is counted as the app pulls it. Forms (sign-in, the token endpoint, the web
    app's posts) have a smaller limit of their own: none of them needs more.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_form_bytes: int,
        body_timeout: float | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_form_bytes = max_form_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, declared = self.max_body_bytes, None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"content-type" and value.lower().startswith(FORM_TYPES):
                limit = min(limit, self.max_form_bytes)
        if declared is not None and not declared.isdigit():
            await outcome_response(400, "structure", "Content-Length is not a number")(
                scope, receive, send
            )
            return
        if declared is not None and int(declared) > limit:
            # The server (h11, httptools) closes the connection after this answer,
            # since the body was never read: the client cannot keep sending into it.
            response = outcome_response(
                413, "too-long", f"the body is larger than the limit of {limit} bytes"
            )
            await response(scope, receive, send)
            return
        received, started, complete = 0, False, False

        async def counted() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect is not timed
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                # A client that stops sending mid-body holds a worker's request: 408.
                raise HTTPException(408, "the request body did not arrive in time") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge as e:
            # Read outside the app's exception handlers (another middleware): answer here.
            if started:
                raise
            await outcome_response(413, "too-long", str(e.detail))(scope, receive, send)
