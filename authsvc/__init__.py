"""authsvc: an identity-aware NATS auth callout server.

Each connect the server delegates travels one way through the package:
decode (``protocol``) -> verify identity (``identity``) -> evaluate policy (``policy``)
-> mint (``minting``) -> audit (``audit``) -> reply, orchestrated by ``service``.
"""

__version__ = "0.1.0"
