"""The TLS scenario's fixtures: a self-signed certificate for 127.0.0.1, and nginx's config
with a TLS listener next to the plain one, both written into the run's output folder.

Both proxies terminate TLS the same way: the same ECDSA P-256 certificate, TLS 1.2-1.3,
Mozilla's "intermediate" suites, no session tickets (propylon's defaults, docs/security.md),
so the comparison is of the TLS work, not of different settings. wrk keeps its connections
alive, so this measures the per-request cost of encryption, with a handshake per connection
only at the start.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

from harness.entries import BENCH_DIR
from propylon.http.tls import TLS12_CIPHERS

TLS_PORT = 8443
NGINX_TLS_SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {ciphers};
        ssl_prefer_server_ciphers off;
        ssl_session_tickets off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / {{
            proxy_pass http://u;
        }}
    }}
"""


def tls_fixtures(out: Path) -> Path:
    """The folder holding cert.pem, key.pem and proxy-nginx-tls.conf (made once per run)."""
    folder = out / "tls"
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    plain = (BENCH_DIR / "proxy-nginx.conf").read_text()
    # The same http block with one more server; the last "}" closes http.
    head, _, _ = plain.rpartition("}")
    server = NGINX_TLS_SERVER.format(port=TLS_PORT, cert=cert, key=key, ciphers=TLS12_CIPHERS)
    (folder / "proxy-nginx-tls.conf").write_text(head + server + "}\n")
    return folder


def client_context(folder: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(folder / "cert.pem"))
