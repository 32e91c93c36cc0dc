"""Errors a use case raises. Each carries a Chinese message for the user and an HTTP-like status."""
from __future__ import annotations


class BangbanError(Exception):
    """Base class: ``message`` is shown to the user as it is."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict | list | None = None):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        out: dict = {"error": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(BangbanError):
    status = 422
    code = "invalid_input"


class NotAuthenticated(BangbanError):
    status = 401
    code = "not_authenticated"


class Forbidden(BangbanError):
    status = 403
    code = "forbidden"


class NotFound(BangbanError):
    status = 404
    code = "not_found"


class Conflict(BangbanError):
    status = 409
    code = "conflict"


class ConfirmationRequired(Conflict):
    """The step ends a case (or is otherwise final) and the person has not yet confirmed it: nothing was changed.
    ``message`` names the consequence (the task's ``confirm`` text, a message's ``confirm``); the page asks, and the
    step is taken when the same form comes back confirmed."""

    code = "confirmation_required"


class TooLarge(BangbanError):
    """What was sent is over a size limit (counted in bytes, whatever the script)."""

    status = 413
    code = "too_large"


class Unavailable(BangbanError):
    """The database cannot be reached (restarting, connections dropped, locked too long): try again shortly.
    Nothing was changed — the step's transaction never committed."""

    status = 503
    code = "unavailable"
    retry_after = 5


class ProcessDefinitionError(BangbanError):
    """The process files are wrong: a process owner has to fix them (the case is left as it was). The person who
    acted gets 422 — their step could not be processed and nothing changed — with the Chinese explanation; the
    process owners are notified (it is theirs to fix, not an outage of the service)."""

    status = 422
    code = "process_definition_error"


class TooManyAttempts(BangbanError):
    """Too many failed logins from this account or address: refused for a while (``retry_after`` seconds)."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class SessionChanged(Exception):
    """A request's session, answered from this process's memory, turned out different in the database when its
    check ran (ended, user deactivated or changed, due for its once-a-minute write). Raised before the transaction
    did anything; the web layer then looks the session up afresh and runs the request again. Never shown to a user."""
