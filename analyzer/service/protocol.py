"""uvicorn's HTTP/1.1 protocol with a deadline for the request headers.

uvicorn times out a connection idle between requests (``timeout_keep_alive``) but not one that sends
half a request line and then nothing: such connections would pile up for as long as the client keeps
them open. :class:`HeaderDeadlineProtocol` closes a connection whose request headers are not complete
within ``header_timeout_s`` of the connection opening, or of the previous response ending. The body is
the upload code's business (:mod:`analyzer.service.uploads`: a body that makes no progress for
``upload_idle_timeout_s`` is answered 408 and its upload slot freed).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("analyzer.service")


def with_header_deadline(header_timeout_s: float) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this deadline."""

    class HeaderDeadlineProtocol(H11Protocol):
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self.deadline = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def _headers_too_slow(self) -> None:
            self.deadline = None
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                log.info("closing a connection whose request headers did not arrive within %g s", header_timeout_s)
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # a request is under way: its headers are complete

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol
