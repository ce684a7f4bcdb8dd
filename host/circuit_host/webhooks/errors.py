"""The one error webhook intake raises: what to answer, and why."""

from __future__ import annotations

from ..errors import CircuitError


class WebhookRejected(CircuitError):
    """A webhook refused before anything ran; ``status`` is the HTTP status to answer.

    ``reason`` is a stable machine-readable code (for problem-details ``type`` or metrics);
    the message says precisely what was wrong and never echoes a secret or a signature.

    | status | reason(s) |
    |---|---|
    | 400 | ``malformed`` (bad JSON, bad shape, missing field) |
    | 401 | ``bad_signature``, ``missing_signature``, ``unsigned_not_allowed``, ``stale`` |
    | 404 | ``unknown_source`` |
    | 409 | ``replay`` |
    | 413 | ``too_large`` |
    | 415 | ``unsupported_media_type`` |
    | 422 | ``unsupported_event`` |
    """

    kind = "webhook_rejected"

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(message)

    def __repr__(self) -> str:
        return f"WebhookRejected({self.status}, {self.reason!r}, {self.message!r})"


def malformed(message: str) -> WebhookRejected:
    return WebhookRejected(400, "malformed", message)


def unsupported(message: str) -> WebhookRejected:
    return WebhookRejected(422, "unsupported_event", message)
