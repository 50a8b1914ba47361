"""The auth-callout wire format: nkeys, xkeys, the NATS JWT codec, request and response. Pure.

Modules:

* :mod:`~authsvc.protocol.nkeys`: ed25519 nkeys (``KeyPair``), key-string encoding, ``verify``.
* :mod:`~authsvc.protocol.xkeys`: x25519 ``CurveKeyPair`` and ``xkv1`` seal/open.
* :mod:`~authsvc.protocol.jwt`: ``encode``/``decode`` of v2 ``ed25519-nkey`` JWTs.
* :mod:`~authsvc.protocol.request`: ``decode_request`` -> ``ConnectRequest`` or a denial.
* :mod:`~authsvc.protocol.response`: ``encode_response``, ``encode_user_jwt``.

Exceptions (all carry text safe to log: never a seed, a token or a credential):

* ``KeyFormatError(ValueError)``: a key or seed string is malformed or of the wrong type.
* ``XKeyError(ValueError)``: sealing/opening failed (bad key, version tag, forged/short box).
* ``JwtError(ValueError)``: a token was refused; ``.kind`` is a ``JwtErrorKind``.
* ``RequestRejected(Exception)``: a callout request is denied; ``.reason`` is a
  ``DenyReason``, ``.reply_to`` is set only when the request's signature verified.
"""

from authsvc.protocol.jwt import JwtError, JwtErrorKind
from authsvc.protocol.nkeys import KeyFormatError, KeyPair, Prefix
from authsvc.protocol.request import (
    ReplyAddress,
    RequestRejected,
    RequestRules,
    decode_request,
)
from authsvc.protocol.response import encode_response, encode_user_jwt
from authsvc.protocol.xkeys import CurveKeyPair, XKeyError

__all__ = [
    "CurveKeyPair",
    "JwtError",
    "JwtErrorKind",
    "KeyFormatError",
    "KeyPair",
    "Prefix",
    "ReplyAddress",
    "RequestRejected",
    "RequestRules",
    "XKeyError",
    "decode_request",
    "encode_response",
    "encode_user_jwt",
]
