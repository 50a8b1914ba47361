"""Stable, typed reason codes for every denial.

The code is what reaches nats-server (as the response ``error``), the audit log and metrics.
Values are part of the public contract: never rename one, only add.
"""

from enum import StrEnum


class DenyReason(StrEnum):
    """Why a connect was refused. Free text goes to the audit detail, never here."""

    # The callout request itself (protocol.request).
    REQUEST_MALFORMED = "request_malformed"
    REQUEST_TOO_LARGE = "request_too_large"
    REQUEST_BAD_SIGNATURE = "request_bad_signature"
    REQUEST_EXPIRED = "request_expired"
    REQUEST_MISADDRESSED = "request_misaddressed"
    REQUEST_WRONG_TYPE = "request_wrong_type"
    SERVER_NOT_ALLOWED = "server_not_allowed"
    XKEY_REQUIRED = "xkey_required"
    XKEY_NOT_CONFIGURED = "xkey_not_configured"
    XKEY_DECRYPT_FAILED = "xkey_decrypt_failed"
    XKEY_MISMATCH = "xkey_mismatch"

    # Identity verification (identity.*).
    NO_CREDENTIALS = "no_credentials"
    CREDENTIALS_MALFORMED = "credentials_malformed"
    NONCE_MISSING = "nonce_missing"
    NKEY_SIGNATURE_INVALID = "nkey_signature_invalid"
    IDENTITY_EXPIRED = "identity_expired"
    UNKNOWN_IDENTITY_SOURCE = "unknown_identity_source"
    # Bearer tokens (identity.oidc, identity.jws): one code per attack class.
    TOKEN_MALFORMED = "token_malformed"
    TOKEN_TOO_LARGE = "token_too_large"
    TOKEN_ALG_NOT_ALLOWED = "token_alg_not_allowed"
    TOKEN_HEADER_FORBIDDEN = "token_header_forbidden"
    TOKEN_CRIT_UNSUPPORTED = "token_crit_unsupported"
    TOKEN_TYPE_MISMATCH = "token_type_mismatch"
    ISSUER_UNKNOWN = "issuer_unknown"
    TOKEN_KID_UNKNOWN = "token_kid_unknown"
    KEY_TOO_WEAK = "key_too_weak"
    TOKEN_SIGNATURE_INVALID = "token_signature_invalid"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"
    TOKEN_LIFETIME_TOO_LONG = "token_lifetime_too_long"
    TOKEN_AUDIENCE_MISMATCH = "token_audience_mismatch"
    TOKEN_CLAIM_MISSING = "token_claim_missing"
    TOKEN_CLAIM_INVALID = "token_claim_invalid"
    # AWS IAM (identity.aws_iam): the signed STS GetCallerIdentity proof.
    STS_REQUEST_MALFORMED = "sts_request_malformed"
    STS_HOST_NOT_ALLOWED = "sts_host_not_allowed"
    STS_ACTION_NOT_ALLOWED = "sts_action_not_allowed"
    STS_PARAMETER_DUPLICATE = "sts_parameter_duplicate"
    STS_HEADER_NOT_ALLOWED = "sts_header_not_allowed"
    STS_SERVER_ID_MISMATCH = "sts_server_id_mismatch"
    STS_NONCE_MISMATCH = "sts_nonce_mismatch"
    STS_REQUEST_STALE = "sts_request_stale"
    STS_SIGNATURE_REJECTED = "sts_signature_rejected"
    STS_RESPONSE_INVALID = "sts_response_invalid"
    # STS vouched for a caller of a kind not accepted here (federated users, unless enabled).
    STS_CALLER_NOT_ALLOWED = "sts_caller_not_allowed"

    # Policy (policy.engine).
    NO_MATCHING_RULE = "no_matching_rule"
    ACCOUNT_AMBIGUOUS = "account_ambiguous"
    EXPLICIT_DENY = "explicit_deny"
    ROLE_NOT_PERMITTED = "role_not_permitted"
    # Only role-tagged allow rules matched, and the client asked for no role.
    ROLE_REQUIRED = "role_required"
    CONNECTION_NOT_ALLOWED = "connection_not_allowed"
    OUTSIDE_CONNECT_WINDOW = "outside_connect_window"
    TEMPLATE_INVALID = "template_invalid"

    # Minting (minting.*): the grant cannot be turned into a user JWT.
    ACCOUNT_UNKNOWN = "account_unknown"
    ACCOUNT_FORBIDDEN = "account_forbidden"
    GRANT_TOO_SHORT = "grant_too_short"

    # Faults: the request was fine, something on our side was not (fail closed).
    OVERLOADED = "overloaded"
    POLICY_UNAVAILABLE = "policy_unavailable"
    SIGNING_FAILED = "signing_failed"
    AUDIT_UNAVAILABLE = "audit_unavailable"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL_ERROR = "internal_error"
