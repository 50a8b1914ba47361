"""Kubernetes projected service-account tokens (``ServiceAccountTokenProjection``).

Source: kubernetes.io "Managing Service Accounts". The
API server puts its private claims in one nested object::

    "sub": "system:serviceaccount:payments:api",
    "kubernetes.io": {"namespace": "payments",
                      "serviceaccount": {"name": "api", "uid": "..."},
                      "pod": {"name": "api-7d9f...", "uid": "..."},      # bound tokens
                      "node": {"name": "ip-10-0-1-7", "uid": "..."},     # 1.30+
                      "warnafter": 1700000000}                          # legacy extended

Policies cannot reach into nested objects, so the profile flattens it into typed string
attributes: ``k8s_namespace``, ``k8s_serviceaccount``, ``k8s_serviceaccount_uid``,
``k8s_pod``, ``k8s_pod_uid``, ``k8s_node``, ``k8s_node_uid``. The namespace and service
account must agree with ``sub``; the API server always writes both, so a disagreement
means the token was not minted by a Kubernetes API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authsvc.domain import AttributeValue, Deny, DenyReason
from authsvc.identity.providers.base import Shaped

CLAIM = "kubernetes.io"
SUBJECT_PREFIX = "system:serviceaccount:"
# nested object -> attribute prefix
_OBJECTS = {"serviceaccount": "k8s_serviceaccount", "pod": "k8s_pod", "node": "k8s_node"}


class KubernetesServiceAccount:
    """The ``kubernetes.io`` claim as ``k8s_*`` attributes, checked against ``sub``."""

    name = "kubernetes"
    attribute_names = frozenset({"k8s_namespace", *(p for p in _OBJECTS.values()),
                                 *(f"{p}_uid" for p in _OBJECTS.values())})

    def shape(self, claims: Mapping[str, Any]) -> Shaped | Deny:
        """Namespace, service account, pod and node of the workload."""
        private = claims.get(CLAIM)
        if not isinstance(private, dict):
            return Deny(DenyReason.TOKEN_CLAIM_MISSING, f"no {CLAIM} object: not a projected "
                        "service-account token")
        namespace = private.get("namespace")
        if not isinstance(namespace, str) or not namespace:
            return Deny(DenyReason.TOKEN_CLAIM_MISSING, f"{CLAIM}.namespace is missing")
        attributes: dict[str, AttributeValue] = {"k8s_namespace": namespace}
        for key, prefix in _OBJECTS.items():
            found = _object(private, key, prefix)
            if isinstance(found, Deny):
                return found
            attributes.update(found)
        account = attributes.get("k8s_serviceaccount")
        if account is None:
            return Deny(DenyReason.TOKEN_CLAIM_MISSING, f"{CLAIM}.serviceaccount is missing")
        if claims.get("sub") != f"{SUBJECT_PREFIX}{namespace}:{account}":
            return Deny(DenyReason.TOKEN_CLAIM_INVALID,
                        f"sub disagrees with {CLAIM} namespace and service account")
        return Shaped(attributes)


def _object(private: Mapping[str, Any], key: str, prefix: str) -> dict[str, str] | Deny:
    value = private.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        return Deny(DenyReason.TOKEN_CLAIM_INVALID, f"{CLAIM}.{key} is not an object")
    found: dict[str, str] = {}
    for member, attribute in (("name", prefix), ("uid", f"{prefix}_uid")):
        item = value.get(member)
        if item is None:
            continue
        if not isinstance(item, str) or not item:
            return Deny(DenyReason.TOKEN_CLAIM_INVALID, f"{CLAIM}.{key}.{member} is not a string")
        found[attribute] = item
    return found
