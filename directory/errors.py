"""FHIR errors raised by storage and search, rendered as OperationOutcome by the API."""

from __future__ import annotations


class FHIRError(Exception):
    """An error that maps to one HTTP status and one OperationOutcome issue code."""

    status = 400
    code = "invalid"
    severity = "error"

    def __init__(
        self,
        diagnostics: str,
        *,
        expression: list[str] | None = None,
        issues: list[dict] | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression
        self.extra_issues = issues or []
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def issues(self) -> list[dict]:
        """OperationOutcome.issue entries describing this error."""
        if self.extra_issues:
            return self.extra_issues
        issue: dict[str, object] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = self.expression
        return [issue]

    def operation_outcome(self) -> dict:
        return {"resourceType": "OperationOutcome", "issue": self.issues()}


class InvalidRequest(FHIRError):
    status = 400
    code = "invalid"


class InvalidResource(FHIRError):
    """Content that fails FHIR validation: 422 per the RESTful API's rules for create and update."""

    status = 422
    code = "structure"


class NotFound(FHIRError):
    status = 404
    code = "not-found"


class Gone(FHIRError):
    status = 410
    code = "deleted"


class Conflict(FHIRError):
    status = 409
    code = "conflict"


class PreconditionFailed(FHIRError):
    status = 412
    code = "conflict"


class UnprocessableReference(FHIRError):
    status = 422
    code = "processing"


class NotSupported(FHIRError):
    status = 400
    code = "not-supported"
