"""Lint checks on whom a rule binds: AWS rules that pin no account (``aws_unbound``), and
rules on an issuer the deployment does not configure (``issuer_not_configured``).

Each check returns the warning's sentence, or None; ``lint`` names the code and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

from authsvc.domain import IdentitySource
from authsvc.policy.claims import ClaimTest
from authsvc.policy.model import Effect, Match, Rule

# An AWS IAM identity's issuer is the STS host name the client signed its request for, which
# aws_proof only accepts as sts[-fips].REGION.amazonaws.com[.cn] or sts.amazonaws.com; this
# pattern is a superset of those.
STS_HOST = re.compile(r"sts(?:-fips)?(?:\.[a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?")
# Attributes of an AWS IAM identity that name one account or one principal in it
# (identity/aws_iam.py caller_identity): a literal value of one of them pins the account.
AWS_PINNING_ATTRIBUTES = ("account", "arn", "user_id")
ACCOUNT_FIELD = 4  # arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE


def may_match_aws(match: Match) -> bool:
    """Whether ``match`` is written for AWS IAM identities: ``source: aws_iam``, ``aws``
    conditions (which only AWS IAM identities meet), or no source and an STS host issuer."""
    if match.source is IdentitySource.AWS_IAM:
        return True
    if match.source is not None:
        return False
    return match.aws is not None or (
        match.issuer is not None and STS_HOST.fullmatch(match.issuer.strip()) is not None)


def aws_unbound(rule: Rule) -> str | None:
    """Why an allow rule for AWS IAM identities admits principals of any AWS account.

    Anyone can open an AWS account and create a role or user of any name in it, and STS
    answers for it like for any other (``arn:aws:iam::*:role/orders-lambda`` is everyone's
    role of that name). A rule pins the account with a literal ``aws.account`` list, with
    every ``aws.arn`` glob's account field a literal 12-digit id, with exact subjects or
    wildcard-free subject globs (the unique ids AROA..., AIDA..., which AWS never reuses),
    or with ``equals``/``in`` on the ``account``, ``arn`` or ``user_id`` claims.
    """
    match = rule.match
    if rule.effect is not Effect.ALLOW or match is None or not may_match_aws(match):
        return None
    if _pins_aws_account(match):
        return None
    return ("admits AWS principals of every AWS account: anyone can create a role or user "
            "of this name in an account of their own; pin aws.account to your account ids, "
            "or write the account into every aws.arn (arn:aws:iam::111122223333:role/NAME)")


def _pins_aws_account(match: Match) -> bool:
    aws = match.aws
    if aws is not None and aws.account is not None and all(
            glob.is_literal for glob in aws.account):
        return True
    if aws is not None and aws.arn is not None and all(
            _literal_account(glob.pattern) for glob in aws.arn):
        return True
    if match.subject is not None:
        return True
    if match.subject_glob is not None and all(glob.is_literal for glob in match.subject_glob):
        return True
    claims = match.claims or {}
    return any(_literal(claims[name]) for name in AWS_PINNING_ATTRIBUTES if name in claims)


def _literal_account(arn: str) -> bool:
    fields = arn.split(":", 5)
    return len(fields) == 6 and len(fields[ACCOUNT_FIELD]) == 12 and \
        fields[ACCOUNT_FIELD].isdigit()


def _literal(test: ClaimTest) -> bool:
    return test.equals is not None or test.one_of is not None


def issuer_not_configured(rule: Rule, issuers: Collection[str]) -> str | None:
    """Why a rule's OIDC ``issuer`` is none of ``issuers`` (the exact issuers the settings
    route, Entra ``{tenantid}`` templates expanded): no token is ever routed to it, so the
    rule never matches, and a deny rule or guardrail written that way protects nothing.

    Issuers are compared exactly, as the verifier routes tokens (``iss`` byte for byte): a
    missing trailing slash (Auth0 issues ``https://TENANT.auth0.com/``) or Google's two
    spellings (``https://accounts.google.com`` and ``accounts.google.com``) are other
    issuers. Rules for AWS IAM identities (STS host issuers) are not OIDC's and are skipped.
    """
    match = rule.match
    if match is None or match.issuer is None or match.aws is not None \
            or match.source not in (None, IdentitySource.OIDC) or match.issuer in issuers:
        return None
    if match.source is None and STS_HOST.fullmatch(match.issuer.strip()):
        return None
    what = {Effect.ALLOW: "the rule never matches",
            Effect.DENY: "the deny never applies: it protects nothing"}[rule.effect]
    near = sorted(name for name in issuers if _loose(name) == _loose(match.issuer))
    hint = f"; the settings have {near[0]!r}" if near else ""
    return (f"issuer {match.issuer!r} is not one of the configured OIDC issuers, so no token "
            f"is routed to it and {what}{hint}")


def _loose(issuer: str) -> str:
    """An issuer with its scheme, case of host and trailing slash dropped: to point at the
    configured issuer a misspelt one probably means, never to match."""
    text = issuer.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    return f"{(parts.hostname or '').lower()}{parts.path.rstrip('/')}"
