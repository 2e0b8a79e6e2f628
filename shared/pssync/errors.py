"""Typed errors shared by the services. Each knows how an HTTP caller or a workflow should see it."""

from __future__ import annotations


class PssyncError(Exception):
    """Base for every domain error; `code` is a stable machine-readable reason."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class IngestRejected(PssyncError):
    """A webhook delivery refused before anything was written."""

    status = 400


class UnknownSource(IngestRejected):
    status = 404
    code = "unknown_source"


class SignatureInvalid(IngestRejected):
    status = 401
    code = "signature_invalid"


class StaleDelivery(IngestRejected):
    status = 400
    code = "stale_timestamp"


class MalformedDelivery(IngestRejected):
    status = 400
    code = "malformed"


class UnknownTenant(IngestRejected):
    """Authentic for the source, but from a portal / organisation / site that is not ours."""

    status = 403
    code = "unknown_tenant"


class PayloadTooLarge(IngestRejected):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(IngestRejected):
    """The Content-Type is not what the source's vendor sends (JSON as UTF-8, or SOAP as text/xml)."""

    status = 415
    code = "unsupported_media_type"


class UnprocessableDelivery(IngestRejected):
    """Authentic and well-formed, but not a business event we can accept (schema or type)."""

    status = 422
    code = "unprocessable"


class DeliveryInProgress(IngestRejected):
    """A concurrent duplicate: the first copy is still being recorded; the sender should retry."""

    status = 409
    code = "in_progress"


class TransientDownstreamError(PssyncError):
    """A dependency failed in a way worth retrying (throttling, 5xx, timeouts).

    The class name is the Step Functions error name the Retry policies match on.
    """

    code = "transient"


class BusinessRuleViolation(PssyncError):
    """Retrying will not help: the data breaks a rule. Lands on the exceptions queue."""

    code = "business_rule"


class VendorRejected(PssyncError):
    """A vendor API refused the request for good (a 4xx other than throttling); retrying will not help.

    `status` is the HTTP status, `vendor_code` the vendor's own error code when its body names one.
    """

    code = "vendor_rejected"

    def __init__(self, message: str, *, status: int, vendor_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.vendor_code = vendor_code


class VendorNotFound(VendorRejected):
    """404 / 410: the record the request named does not exist at the vendor."""

    code = "vendor_not_found"


class VendorAuthRefused(TransientDownstreamError):
    """401 / 403: our credentials were refused. Not retried in the call; transient for the work item,
    which its queue or workflow retries and then parks until an operator fixes the credentials."""

    code = "vendor_auth_refused"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
