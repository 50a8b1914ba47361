"""moto's STS on loopback, which checks SigV4 signatures, with an IAM user and a role session.

``MotoSts().start()`` runs ``python -m moto.server`` as a subprocess on 127.0.0.1, creates
(unauthenticated, as moto allows at first) the user ``alice`` with an access key and the role
``svc/orders-lambda``, assumes the role as session ``lambda-42``, and then switches SigV4
enforcement on (``/moto-api/reset-auth``). ``user`` and ``role`` are botocore credentials;
``endpoints`` maps the STS host names the tokens name to moto's URL, as the verifier's
``endpoints`` setting does. moto does not check ``X-Amz-Date`` freshness; authsvc does.
``token_parts`` / ``from_parts`` open and re-seal a token for tampering.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.credentials import Credentials

from authsvc.identity.aws_token import PREFIX, encode_proof
from authsvc.natsconf.process import free_port, stop_process

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/orders-lambda"  # canonical: the /svc/ path is lost
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
HOSTS = ("sts.amazonaws.com", "sts.us-east-1.amazonaws.com", "sts.eu-west-1.amazonaws.com")
_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "sts:AssumeRole"}]}


def token_parts(token: str) -> dict[str, Any]:
    """The JSON document inside an ``aws-sts-v1.`` token, to tamper with."""
    payload = token.removeprefix(PREFIX)
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    parts: dict[str, Any] = json.loads(raw)
    return parts


def from_parts(parts: dict[str, Any]) -> str:
    """The token for (tampered) parts."""
    return encode_proof(parts["host"], parts["body"], parts["headers"])


@dataclass
class MotoSts:
    log: Path | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    user: Any = None
    role: Any = None
    role_unique_id: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def endpoints(self) -> dict[str, str]:
        return {host: self.url for host in HOSTS}

    def start(self, timeout: float = 20.0) -> MotoSts:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "moto-api/", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("moto did not start")
        self._bootstrap()
        return self

    def _client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")

    def _bootstrap(self) -> None:
        iam, sts = self._client("iam"), self._client("sts")
        iam.create_user(UserName="alice")
        key = iam.create_access_key(UserName="alice")["AccessKey"]
        self.user = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        role = iam.create_role(RoleName="orders-lambda", Path="/svc/",
                               AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]
        self.role_unique_id = role["RoleId"]
        session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="lambda-42")
        c = session["Credentials"]
        self.role = Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        httpx.post(self.url + "moto-api/reset-auth", content=b"0").raise_for_status()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None
