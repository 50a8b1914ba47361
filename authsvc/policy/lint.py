"""Warnings about a policy that loads but is probably not what its authors meant.

Errors block loading (``load``); these do not, but ``policy check`` lists them and
``--strict`` (and hot reload with ``policy.reject_warnings``) turns them into failures. Each
warning has a stable ``code`` and names the rule (docs/policy.md lists them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from authsvc.domain import UNLIMITED, IdentitySource
from authsvc.policy.claims import ClaimTest
from authsvc.policy.lint_bindings import STS_HOST, aws_unbound, issuer_not_configured
from authsvc.policy.lint_subjects import star_unsealed
from authsvc.policy.model import Effect, Match, Policy, Rule
from authsvc.policy.overlaps import account_overlap_candidates, literal_arns
from authsvc.policy.subjects import FULL_WILDCARD, SEPARATOR, WILDCARD
from authsvc.policy.templates import claims_used, is_template

# OIDC Core 5.7: only iss+sub is stable; these claims can be changed by users or admins.
# GitHub Actions names repositories, owners and actors that can be renamed, and a deleted
# name can be taken by someone else; its tokens carry the immutable ids beside them
# (GitHub docs, "OpenID Connect reference"; the verifier flags the names as mutable too).
MUTABLE_CLAIMS: dict[str, str] = {
    **dict.fromkeys(("email", "name", "preferred_username", "upn", "nickname", "given_name",
                     "family_name", "unique_name"),
                    "match on issuer+subject or an immutable id"),
    "repository": "match claims.repository_id, which a renamed or re-created repository "
                  "does not keep",
    "repository_owner": "match claims.repository_owner_id",
    "actor": "match claims.actor_id",
}
# Grants that reach every reply or every JetStream admin call in the account.
ACCOUNT_WIDE = frozenset({"_INBOX.>", "$JS.API.>", ">", "$SYS.>"})
HIGH_LEVEL_TOKENS = 1
# GitHub mints a token for every workflow run of every repository on github.com, all with one
# issuer: https://token.actions.githubusercontent.com, or with a GHEC enterprise's custom issuer
# https://token.actions.githubusercontent.com/<enterprise>; a GitHub Enterprise Server instance
# issues them as https://HOSTNAME/_services/token for every repository on it (GitHub docs,
# "OpenID Connect reference", iss). A rule on such an issuer must name the repository, by
# subject or claim, or any repository's job matches (GitHub's OIDC hardening guide; Vault
# and AWS docs give the same warning). repository_owner alone does not count: anyone can create
# a repository in an organisation they belong to, and owners can be renamed.
GITHUB_HOST = "token.actions.githubusercontent.com"
GHES_ISSUER_PATH = "/_services/token"
REPOSITORY_CLAIMS = frozenset({"repository", "repository_id"})
# GitHub's default sub begins with ``repo:OWNER/REPO:`` (GitHub docs, "OpenID Connect
# reference", example subject claims). Only a literal OWNER/REPO there names one repository:
# ``repo:acme/*:*`` admits every repository the owner has, or will create.
GITHUB_REPO_PREFIX = "repo:"
# nats-server (2.15, issue #5002) enforces none of a callout-issued user's subs, data and
# payload limits: only account and server limits apply (docs/deployment.md, checked against a
# running server: 5 subscriptions under subs: 2, 100-byte messages under payload: 16).
LIMIT_FIELDS = ("subs", "payload", "data")
# Attributes the OIDC verifier always makes lists, even from a one-value claim (``aud`` is a
# string or an array in RFC 7519 4.1.3; ``groups_claim`` values go through string_list):
# for an allow rule equals and in compare scalars only (claims.py), so they never match.
LIST_ATTRIBUTES = frozenset({"aud", "mutable_claims", "groups"})
# What the other verifiers put in an identity (identity/nkey.py, identity/aws_iam.py
# caller_identity). An nkey identity is its public key: no issuer (the empty string, which
# match.issuer cannot be) and no attributes. An AWS IAM identity's issuer is the STS host name
# the client signed its request for (``STS_HOST``).
AWS_IAM_ATTRIBUTES = frozenset({"arn", "account", "user_id", "arn_kind", "session_name"})
# An nkey identity's subject is the client's user public key: U and 55 base32 characters.
USER_PUBLIC_KEY = re.compile(r"U[A-Z2-7]{55}")


@dataclass(frozen=True, slots=True)
class Warning:
    """One finding: a stable code, the rule id, and a sentence for the reviewer."""

    code: str
    rule_id: str
    message: str


def lint(policy: Policy, *, demo_keys: Mapping[str, str] | None = None,
         oidc_issuers: Collection[str] | None = None) -> list[Warning]:
    """Every warning for ``policy``, in rule order.

    ``demo_keys`` maps public keys whose seeds anyone can derive (the demo identities) to
    their names; an allow rule naming one warns ``demo_identity``. The caller decides which
    keys to pass (none for the shipped demo policy itself): this package cannot derive them.
    ``oidc_issuers`` are the exact issuers the deployment's settings configure; with them, a
    rule on another issuer warns ``issuer_not_configured`` (None: no settings, no check).
    """
    found: list[Warning] = []
    guarded = sorted(rule.id for rule in policy.rules
                     if rule.is_guardrail and rule.permissions is not None
                     and rule.permissions.publish)
    merged_denies = _merged_publish_denies(policy)
    for rule in policy.rules:
        found.extend(_rule_warnings(rule))
        found.extend(_demo_identity(rule, demo_keys or {}))
        found.extend(_responses_bypass_deny(rule, guarded, merged_denies.get(rule.id, [])))
        if oidc_issuers is not None:
            problem = issuer_not_configured(rule, oidc_issuers)
            if problem:
                found.append(Warning("issuer_not_configured", rule.id, problem))
    found.extend(_account_overlaps(policy))
    return found


def _responses_bypass_deny(rule: Rule, guardrails: Sequence[str],
                           others: Sequence[str]) -> Iterator[Warning]:
    # nats-server lets a client with resp publish to the reply subject of a message it
    # received whatever its publish deny list says, and whoever may publish to a subject
    # the client subscribes to picks that reply subject (checked against 2.15.1: a reply to
    # secret.viaresp was delivered although the grant denied secret.>). A merged grant has
    # resp if any of its rules grants it, so another rule's publish deny is bypassed too.
    grant = rule.grant
    if rule.effect is not Effect.ALLOW or grant is None or grant.responses is None:
        return
    denies = [*(["its publish deny list"] if grant.publish.deny else []),
              *([f"the publish deny list of {', '.join(map(repr, others))}, whose grant "
                 "merges with this one for identities both match"] if others else []),
              *([f"guardrail(s) {', '.join(guardrails)}"] if guardrails else [])]
    if denies:
        yield Warning("responses_bypass_deny", rule.id,
                      f"grants responses, and a reply goes to any subject the requester "
                      f"names: replies are not stopped by {' or '.join(denies)}; keep "
                      "responses off grants that must never publish there")


def _merged_publish_denies(policy: Policy) -> dict[str, list[str]]:
    """For each allow rule with ``responses``, the other allow rules with a publish deny
    that its grant may merge with: same account and role (the engine merges only those),
    and nothing ``_may_overlap`` compares tells their identities apart. The denying rules
    are filed by account, role, source, issuer and subject, so a rule meets only those its
    own values (or an unpinned one) can reach."""
    filed: dict[tuple[str, str | None], dict[tuple[object, ...], list[Rule]]] = defaultdict(
        lambda: defaultdict(list))
    responders: list[Rule] = []
    for rule in policy.rules:
        grant, match = rule.grant, rule.match
        if rule.effect is not Effect.ALLOW or grant is None or match is None:
            continue
        if grant.responses is not None:
            responders.append(rule)
        if grant.publish.deny:
            for subject in match.subject or (None,):
                filed[grant.account, rule.role][match.source, match.issuer, subject].append(rule)
    found: dict[str, list[str]] = {}
    for rule in responders:
        assert rule.grant is not None and rule.match is not None
        match = rule.match
        others = sorted({other.id for key, rules in filed[rule.grant.account, rule.role].items()
                         if _compatible(key, (match.source, match.issuer), match.subject)
                         for other in rules if other.id != rule.id and _may_overlap(rule, other)})
        if others:
            found[rule.id] = others
    return found


def _compatible(key: tuple[object, ...], pinned: tuple[object, ...],
                subjects: Sequence[str] | None) -> bool:
    """Whether a rule filed under ``key`` (source, issuer, one subject; None where it pins
    none) may match an identity a rule with ``pinned`` values and ``subjects`` matches."""
    *values, subject = key
    if any(mine is not None and theirs is not None and mine != theirs
           for mine, theirs in zip(pinned, values, strict=True)):
        return False
    return subject is None or subjects is None or subject in subjects


def _allows(rule: Rule) -> Iterator[tuple[str, str]]:
    if rule.grant is not None:
        yield from (("publish", subject) for subject in rule.grant.publish.allow)
        yield from (("subscribe", subject) for subject in rule.grant.subscribe.allow)


def _rule_warnings(rule: Rule) -> Iterator[Warning]:
    for direction, subject in _allows(rule):
        tokens = subject.split(SEPARATOR)
        if subject in ACCOUNT_WIDE:
            yield Warning("account_wide_grant", rule.id,
                          f"{direction} {subject!r} reaches the whole account; use a "
                          "per-identity prefix")
        elif tokens[-1] in (WILDCARD, FULL_WILDCARD) and len(tokens) - 1 <= HIGH_LEVEL_TOKENS:
            yield Warning("broad_wildcard", rule.id,
                          f"{direction} {subject!r} ends in a wildcard at a high level")
    yield from _template_warnings(rule)
    yield from (Warning("star_unsealed", rule.id, text) for text in star_unsealed(rule))
    yield from _non_ascii(rule)
    yield from _never_matches(rule)
    yield from _github_unbound(rule)
    unbound = aws_unbound(rule)
    if unbound:
        yield Warning("aws_unbound", rule.id, unbound)
    yield from _issuer_unbound(rule)
    yield from _limits_not_enforced(rule)
    claims = rule.match.claims if rule.match is not None and rule.match.claims else {}
    for name in sorted(set(claims) & set(MUTABLE_CLAIMS)):
        yield Warning("mutable_identifier", rule.id,
                      f"claims.{name} can change; {MUTABLE_CLAIMS[name]}")


def _template_warnings(rule: Rule) -> Iterator[Warning]:
    claims = rule.match.claims if rule.match is not None and rule.match.claims else {}
    subjects = [*(rule.grant.publish.allow + rule.grant.publish.deny
                  + rule.grant.subscribe.allow + rule.grant.subscribe.deny
                  if rule.grant is not None else ()),
                *(rule.permissions.publish + rule.permissions.subscribe
                  if rule.permissions is not None else ())]
    used = {name for subject in subjects if is_template(subject)
            for name in claims_used(subject)}
    for name in sorted(used):
        if name not in claims or claims[name].pattern is None:
            yield Warning("template_without_pattern", rule.id,
                          f"claims.{name} is templated without a pattern in match.claims; "
                          "values outside the token class deny at runtime")


def _non_ascii(rule: Rule) -> Iterator[Warning]:
    # A fullwidth > (U+FF1E) or a Greek Rho in APP looks like the ASCII one in review and is
    # another subject or account to nats-server.
    named = [("subject", subject) for subject in _subjects(rule)]
    if rule.grant is not None:
        named.insert(0, ("account", rule.grant.account))
    for what, text in named:
        odd = sorted({char for char in text if not char.isascii()})
        if odd:
            shown = ", ".join(f"U+{ord(char):04X}" for char in odd[:3])
            yield Warning("non_ascii", rule.id,
                          f"{what} {text!r} holds non-ASCII characters ({shown}): lookalikes "
                          "of ASCII letters, '.', '*' or '>' name other subjects and accounts")


def _subjects(rule: Rule) -> list[str]:
    grant, guard = rule.grant, rule.permissions
    return [*(grant.publish.allow + grant.publish.deny + grant.subscribe.allow
              + grant.subscribe.deny if grant is not None else ()),
            *(guard.publish + guard.subscribe if guard is not None else ())]


def _never_matches(rule: Rule) -> Iterator[Warning]:
    match = rule.match
    if match is None:
        return
    if match.aws is not None and match.source not in (None, IdentitySource.AWS_IAM):
        yield Warning("never_matches", rule.id, "aws conditions only hold for aws_iam identities")
    for problem in _impossible_for_source(match):
        yield Warning("never_matches", rule.id, problem)
    if match.issuer is not None and match.issuer != match.issuer.strip():
        yield Warning("never_matches", rule.id, "issuer has leading or trailing whitespace; "
                      "issuers are compared exactly")
    if match.subject is not None and match.subject_glob is not None and not any(
            glob.matches(subject) for glob in match.subject_glob for subject in match.subject):
        yield Warning("never_matches", rule.id, "no listed subject matches subject_glob")
    yield from _scalar_tests_on_lists(rule, match)
    grant_types = rule.grant.connection_types if rule.grant is not None else None
    if match.connection_types and grant_types and not set(match.connection_types) & set(
            grant_types):
        yield Warning("never_matches", rule.id,
                      "match.connection_types and grant.connection_types share no type")


def _scalar_tests_on_lists(rule: Rule, match: Match) -> Iterator[Warning]:
    # An allow rule compares equals/in with the whole value, never a list; a deny rule or
    # guardrail reads a list as "any value" (claims.py), so there they mean membership.
    if rule.effect is not Effect.ALLOW or match.source not in (None, IdentitySource.OIDC) \
            or match.aws is not None:  # aws: an AWS IAM identity, _impossible_for_source
        return
    tests = {**{f"claims.{name}": (name, test) for name, test in (match.claims or {}).items()},
             **({"groups": ("groups", match.groups)} if match.groups is not None else {})}
    for key, (name, test) in sorted(tests.items()):
        scalar = [op for op, value in (("equals", test.equals), ("in", test.one_of))
                  if value is not None]
        if name in LIST_ATTRIBUTES and scalar:
            yield Warning("never_matches", rule.id,
                          f"{key} is always a list, which {' or '.join(scalar)} never matches "
                          "in an allow rule: use contains_any or contains_all")


def _impossible_for_source(match: Match) -> Iterator[str]:
    """Conditions that no identity of the rule's source can meet (see AWS_IAM_ATTRIBUTES).
    ``aws`` conditions hold only for AWS IAM identities, so they fix the source too."""
    source = match.source or (IdentitySource.AWS_IAM if match.aws is not None else None)
    if source is IdentitySource.NKEY:
        if match.issuer is not None:
            yield "nkey identities have no issuer; drop issuer or the source"
        odd = [subject for subject in match.subject or () if not USER_PUBLIC_KEY.fullmatch(
            subject)]
        if odd:
            yield (f"subject {odd[0]!r} is not a user public key (U...), the only subject an "
                   "nkey identity has")
        attributes: frozenset[str] = frozenset()
    elif source is IdentitySource.AWS_IAM:
        if match.issuer is not None and not STS_HOST.fullmatch(match.issuer.strip()):
            yield ("an aws_iam identity's issuer is the STS host name it was verified with "
                   "(e.g. sts.amazonaws.com or sts.eu-west-1.amazonaws.com), never "
                   f"{match.issuer.strip()!r}")
        attributes = AWS_IAM_ATTRIBUTES
    else:
        return
    tests = {**{f"claims.{name}": (name, test) for name, test in (match.claims or {}).items()},
             **({"groups": ("groups", match.groups)} if match.groups is not None else {})}
    for key, (name, test) in sorted(tests.items()):
        if name not in attributes and test.present is not False:
            yield (f"{key} is never set on {source} identities (only present: false holds "
                   "for an absent claim)")


def _limits_not_enforced(rule: Rule) -> Iterator[Warning]:
    limits = rule.grant.limits if rule.grant is not None else None
    if limits is None:
        return
    bounded = [f"{name}: {getattr(limits, name)}" for name in LIMIT_FIELDS
               if getattr(limits, name) != UNLIMITED]
    if bounded:
        yield Warning("limits_not_enforced", rule.id,
                      f"grant.limits {{{', '.join(bounded)}}} go into the user JWT, but "
                      "nats-server does not enforce subs, payload or data for users the auth "
                      "callout places (nats-server issue #5002); set account or server limits "
                      "instead and drop these")


def is_github_issuer(issuer: str) -> bool:
    """Whether ``issuer`` is GitHub Actions' on github.com (optionally a GHEC enterprise's
    ``/<enterprise>`` form) or a GitHub Enterprise Server's ``https://HOST/_services/token``."""
    parts = urlsplit(issuer.strip())
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        return False
    return parts.hostname == GITHUB_HOST or parts.path.rstrip("/") == GHES_ISSUER_PATH


def _github_unbound(rule: Rule) -> Iterator[Warning]:
    match = rule.match
    if rule.effect is not Effect.ALLOW or match is None or match.issuer is None \
            or not is_github_issuer(match.issuer):
        return
    subjects_bind = match.subject is not None and all(map(_names_one_repo, match.subject))
    globs_bind = match.subject_glob is not None and all(
        _names_one_repo(glob.pattern) for glob in match.subject_glob)
    claims = match.claims or {}
    claim_binds = any(_pins(claims[name]) for name in REPOSITORY_CLAIMS & set(claims))
    if not subjects_bind and not globs_bind and not claim_binds:
        yield Warning("github_unbound", rule.id,
                      "admits the workflows of more than one GitHub repository: bind "
                      "subject or subject_glob to repo:OWNER/REPO:... with no wildcard in "
                      "OWNER/REPO, or claims.repository_id with equals or in")


def _names_one_repo(subject: str) -> bool:
    """Whether a GitHub ``sub`` (or a glob of one) starts with ``repo:OWNER/REPO`` written
    out in full: no ``*`` in the owner or the repository, whose end is the next ``:``."""
    if not subject.startswith(GITHUB_REPO_PREFIX):
        return False
    owner, slash, name = subject[len(GITHUB_REPO_PREFIX):].partition(":")[0].partition("/")
    return bool(owner and slash and name) and "*" not in owner + name and "/" not in name


def _pins(test: ClaimTest) -> bool:
    """Whether the condition allows only listed literal values: ``equals`` or ``in``. A
    ``pattern`` (or ``present``) still admits every value it matches."""
    return test.equals is not None or test.one_of is not None


def _issuer_unbound(rule: Rule) -> Iterator[Warning]:
    # OIDC Core 2 and 5.7: sub is unique only within its issuer, and group names are the
    # issuer's own; so without issuer a rule admits whoever any configured issuer (or any
    # tenant of a multi-tenant one) calls by that name. aws conditions hold only for AWS IAM
    # identities (matchers.AttributeGlob), so such a rule cannot match OIDC ones.
    match = rule.match
    if rule.effect is not Effect.ALLOW or match is None or match.issuer is not None \
            or match.source not in (None, IdentitySource.OIDC) or match.aws is not None:
        return
    named = [key for key, value in (("subject", match.subject),
                                    ("subject_glob", match.subject_glob),
                                    ("groups", match.groups), ("claims", match.claims))
             if value]
    if named:
        unless = "" if match.source is IdentitySource.OIDC else \
            " (or source: nkey or aws_iam, if the rule is not meant for OIDC identities)"
        yield Warning("issuer_unbound", rule.id,
                      f"matches {' and '.join(named)} under every configured OIDC issuer, "
                      "but a sub, group or claim value means something only within its "
                      f"issuer: add issuer:{unless}")


def _demo_identity(rule: Rule, demo_keys: Mapping[str, str]) -> Iterator[Warning]:
    match = rule.match
    if rule.effect is not Effect.ALLOW or match is None or not demo_keys:
        return
    literal = [*(match.subject or ()),
               *(glob.pattern for glob in match.subject_glob or () if glob.is_literal)]
    for name in sorted({demo_keys[key] for key in literal if key in demo_keys}):
        yield Warning("demo_identity", rule.id,
                      f"admits the demo identity {name!r}, whose seed anyone can derive from "
                      "authsvc's source: give the client its own key (authsvc keys user)")


def _account_overlaps(policy: Policy) -> Iterator[Warning]:
    allows = [rule for rule in policy.rules if rule.effect is Effect.ALLOW and rule.match]
    # The index proposes the pairs (of the same role, different accounts) that the
    # definition below could flag, without comparing every pair of rules.
    for i, j in account_overlap_candidates(allows):
        first, second = allows[i], allows[j]
        assert first.grant is not None and second.grant is not None
        if first.grant.account != second.grant.account and first.role == second.role \
                and _may_overlap(first, second):
            yield Warning("account_overlap", second.id,
                          f"may match the same identities as {first.id!r} but names account "
                          f"{second.grant.account!r} instead of {first.grant.account!r}")


def _may_overlap(first: Rule, second: Rule) -> bool:
    a, b = first.match, second.match
    assert a is not None and b is not None
    pairs = ((a.source, b.source), (a.issuer, b.issuer))
    if any(x is not None and y is not None and x != y for x, y in pairs):
        return False
    if a.subject is not None and b.subject is not None and not set(a.subject) & set(b.subject):
        return False
    arns_a, arns_b = literal_arns(a), literal_arns(b)
    return arns_a is None or arns_b is None or bool(arns_a & arns_b)
