"""Which accounts a policy may place users in, for a given deployment.

Never the callout account: a user there could read other clients' authorization requests
(nats-server delivers ``$SYS.REQ.USER.AUTH`` in it). In operator mode never the system
account either, and only accounts authsvc holds a signing key for. ``serve`` applies these
at startup and on every reload; ``authsvc policy check -c SETTINGS`` applies the same ones so
CI refuses what production would.
"""

from __future__ import annotations

from collections.abc import Collection

from authsvc.errors import ConfigError
from authsvc.minting import Mode
from authsvc.natsconf.keystore import SYSTEM_ACCOUNT
from authsvc.policy import Policy
from authsvc.settings import Settings

# nats-server's system account in config mode when the config names none (ours names none).
CONFIG_SYSTEM_ACCOUNT = "$SYS"
# Without settings: the default callout account name, the system account authsvc's operator
# mode creates, and nats-server's default system account name.
DEFAULT_FORBIDDEN = frozenset({"AUTH", SYSTEM_ACCOUNT, CONFIG_SYSTEM_ACCOUNT})


def policy_accounts(policy: Policy) -> list[str]:
    """The accounts the policy's grants name, sorted."""
    return sorted({rule.grant.account for rule in policy.rules if rule.grant is not None})


def forbidden_accounts(settings: Settings) -> frozenset[str]:
    """Accounts no user is ever placed in: the callout account (users there could read
    other clients' authorization requests) and the system account (``$SYS``, and in
    operator mode the one authsvc's operator names)."""
    forbidden = {settings.nats.callout_account, CONFIG_SYSTEM_ACCOUNT}
    if settings.nats.mode == "operator":
        forbidden.add(SYSTEM_ACCOUNT)
    return frozenset(forbidden)


def refused_grants(policy: Policy, forbidden: Collection[str]) -> list[tuple[str, str]]:
    """(rule id, account) of every grant into a ``forbidden`` account, in policy order."""
    return [(rule.id, rule.grant.account) for rule in policy.rules
            if rule.grant is not None and rule.grant.account in forbidden]


def unsigned_accounts(policy: Policy, signing: Collection[str]) -> list[str]:
    """Operator mode: the granted accounts without a signing key among ``signing``."""
    return [name for name in policy_accounts(policy) if name not in signing]


def check_policy_accounts(policy: Policy, mode: Mode, accounts: Collection[str],
                          forbidden: frozenset[str]) -> None:
    """Raise ``ConfigError`` when the policy grants a forbidden account or, in operator
    mode, an account not in ``accounts`` (those with a signing key)."""
    refused = sorted({account for _, account in refused_grants(policy, forbidden)})
    if refused:
        raise ConfigError(f"the policy grants {', '.join(refused)}: nobody may be placed in "
                          "the callout or system account")
    if mode is Mode.OPERATOR:
        missing = unsigned_accounts(policy, accounts)
        if missing:
            raise ConfigError(f"no signing key for account(s) {', '.join(missing)}; run "
                              "`authsvc keys init --mode operator --accounts ...`")
