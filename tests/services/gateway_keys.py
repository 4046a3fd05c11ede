"""The gateway's side of the signed hop, as the tests play it: an Ed25519 key that signs
assertions exactly as the contract says (servicekit.assertion), and a JWKS server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from servicekit.assertion import public_jwk, thumbprint


@dataclass
class GatewayKey:
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def kid(self) -> str:
        return thumbprint(self.private.public_key())

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private.public_key())

    def pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(
        self,
        audience: str,
        subject: str,
        *,
        role: str | None = None,
        scope: str | None = None,
        issuer: str = "propylon",
        lifetime: int = 60,
        issued: float | None = None,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        now = int(time.time() if issued is None else issued)
        body: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
        }
        if role is not None:
            body["role"] = role
        if scope is not None:
            body["scope"] = scope
        body.update(claims or {})
        for name in drop:
            body.pop(name, None)
        jose = {"typ": "gateway-assertion+jwt", "kid": self.kid, **(headers or {})}
        return jwt.encode(body, self.private, algorithm="EdDSA", headers=jose)


def write_jwks(path: Path, *keys: GatewayKey) -> Path:
    path.write_text(json.dumps({"keys": [key.jwk() for key in keys]}))
    return path


class JwksServer:
    """Serves a JWK set that a test can change; counts how often it was fetched."""

    def __init__(self, *keys: GatewayKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/.well-known/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._http.shutdown()
            self._http.server_close()
            thread.join(10)
