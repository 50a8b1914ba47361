"""The demo's AWS: moto's STS, in this process, on loopback, checking SigV4 signatures.

``DemoSts.start()`` returns None when moto (a dev dependency, installed by
scripts/bootstrap.sh) or botocore is not importable; the demo then skips its AWS client.
Otherwise it serves STS and IAM on 127.0.0.1, creates the role ``orders-lambda`` in moto's
account, assumes it as a Lambda would (session ``orders-lambda-demo``), and only then turns
signature checking on (``/moto-api/reset-auth``): from there on, STS answers
GetCallerIdentity only for correctly signed requests. Nothing leaves the host; the
credentials are moto's, worthless anywhere else.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

ACCOUNT = "123456789012"  # moto's default account
ROLE_NAME = "orders-lambda"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
REGION = "us-east-1"
STS_HOSTS = ("sts.amazonaws.com", f"sts.{REGION}.amazonaws.com")
_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "sts:AssumeRole"}]}


def available() -> bool:
    """Whether moto and botocore can be imported (the dev extras are installed)."""
    return all(importlib.util.find_spec(name) is not None
               for name in ("moto", "boto3", "botocore"))


@dataclass
class DemoSts:
    """moto's STS on loopback with one assumed role's credentials."""

    server: Any
    url: str
    credentials: Any  # botocore Credentials of the assumed role

    @classmethod
    def start(cls) -> DemoSts | None:
        """Start and bootstrap moto, or None when it is not installed."""
        if not available():
            return None
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}/"
        try:
            credentials = _assume_role(url)
            httpx.post(url + "moto-api/reset-auth", content=b"0",
                       timeout=5).raise_for_status()
        except Exception:
            server.stop()
            raise
        return cls(server=server, url=url, credentials=credentials)

    @property
    def endpoints(self) -> dict[str, str]:
        """``identity.aws_iam.endpoints``: the STS hosts tokens name, sent to moto."""
        return {host: self.url for host in STS_HOSTS}

    @property
    def regions(self) -> list[str]:
        """``identity.aws_iam.regions``: those of ``STS_HOSTS`` (the global one is us-east-1)."""
        return sorted({"us-east-1", REGION})

    def stop(self) -> None:
        """Stop the server thread."""
        self.server.stop()


def _assume_role(url: str) -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.credentials import Credentials  # type: ignore[import-untyped]

    # Bootstrap calls run before signatures are enforced; these keys identify nothing.
    options = {"endpoint_url": url, "region_name": REGION, "aws_access_key_id": "demo",
               "aws_secret_access_key": "demo"}
    role = boto3.client("iam", **options).create_role(
        RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]
    session = boto3.client("sts", **options).assume_role(
        RoleArn=role["Arn"], RoleSessionName=f"{ROLE_NAME}-demo")["Credentials"]
    return Credentials(session["AccessKeyId"], session["SecretAccessKey"],
                       session["SessionToken"])
