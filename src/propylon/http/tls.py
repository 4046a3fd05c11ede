"""The server's TLS context: checking the certificate and key files, and building the context
with propylon's defaults from them.

Defaults (Mozilla's "intermediate" profile, docs/security.md): TLS 1.2 and 1.3 only; for 1.2
only ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 (forward secrecy and AEAD; no CBC,
no RSA key transport, no DHE, for which we would need our own group parameters); OpenSSL's
TLS 1.3 suites as they are (all AEAD). ALPN offers ``http/1.1`` only: the data plane speaks
nothing else. No compression (CRIME), no renegotiation (a client-triggered CPU sink, and the
source of several past CVEs).

Session resumption: stateless session tickets are off (``OP_NO_TICKET``). Python's ``ssl``
cannot set or rotate the ticket key, so one key would encrypt every TLS 1.2 session's
secrets for a worker's whole life (a key leak would open every recorded session), and with
``--workers N`` each worker has its own key, so a ticket would resume on 1 worker in N
anyway. Resumption still works through OpenSSL's per-context session cache (session ids for
1.2, one stateful ticket for 1.3), which is bounded by OpenSSL and forgets a session after
300 s; a reload starts a new cache.

Files are checked with ``cryptography`` first, because OpenSSL's own errors (``[SSL] PEM
lib``) do not say which file is wrong or why; ``ssl`` then loads the same files.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
ALPN = ("http/1.1",)
TLS13_TICKETS = 1
"""Stateful TLS 1.3 tickets per handshake (OpenSSL's default is 2; one is enough for a
client to resume once, and each sits in the bounded session cache)."""


@dataclass(frozen=True, slots=True)
class FileProblem:
    """What is wrong with one of the two files: ``which`` is ``cert`` or ``key``."""

    which: str
    file: str
    message: str


class TlsFilesError(Exception):
    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.file}: {p.message}" for p in problems))


def check_files(
    cert_file: str, key_file: str, *, now: datetime.datetime | None = None
) -> tuple[list[FileProblem], list[FileProblem]]:
    """Errors and warnings about a certificate chain file and its private key file."""
    errors: list[FileProblem] = []
    warnings: list[FileProblem] = []
    certificate = _read_certificate(cert_file, errors)
    key = _read_key(key_file, errors)
    if certificate is not None and key is not None:
        ours = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if ours != theirs:
            errors.append(
                FileProblem(
                    "key",
                    key_file,
                    f"this private key does not match the certificate in {cert_file} "
                    "(the first certificate of that file must be the server's own)",
                )
            )
    if certificate is not None:
        moment = now or datetime.datetime.now(datetime.UTC)
        if certificate.not_valid_after_utc < moment:
            warnings.append(
                FileProblem(
                    "cert",
                    cert_file,
                    f"the certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}; "
                    "clients will refuse it",
                )
            )
        elif certificate.not_valid_before_utc > moment:
            warnings.append(
                FileProblem(
                    "cert",
                    cert_file,
                    "the certificate is not valid before "
                    f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                )
            )
    return errors, warnings


def _read(path: str, which: str, problems: list[FileProblem]) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        problems.append(FileProblem(which, path, "file not found"))
    except IsADirectoryError:
        problems.append(FileProblem(which, path, "is a directory, not a PEM file"))
    except OSError as exc:
        problems.append(FileProblem(which, path, f"cannot be read: {exc.strerror or exc}"))
    return None


def _read_certificate(path: str, problems: list[FileProblem]) -> x509.Certificate | None:
    data = _read(path, "cert", problems)
    if data is None:
        return None
    if b"PRIVATE KEY-----" in data and b"-----BEGIN CERTIFICATE-----" not in data:
        problems.append(FileProblem("cert", path, "holds a private key, not a certificate"))
        return None
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        problems.append(
            FileProblem(
                "cert",
                path,
                "not a PEM certificate chain (expected '-----BEGIN CERTIFICATE-----' blocks)",
            )
        )
        return None
    return chain[0]


def _read_key(path: str, problems: list[FileProblem]) -> PrivateKeyTypes | None:
    data = _read(path, "key", problems)
    if data is None:
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        problems.append(
            FileProblem(
                "key",
                path,
                "the private key is encrypted; propylon needs it unencrypted "
                "(protect the file with its permissions instead)",
            )
        )
    except (ValueError, UnsupportedAlgorithm):
        if b"-----BEGIN CERTIFICATE-----" in data:
            message = "holds a certificate, not a private key"
        else:
            message = (
                "not a PEM private key (expected '-----BEGIN PRIVATE KEY-----', "
                "'BEGIN RSA PRIVATE KEY' or 'BEGIN EC PRIVATE KEY')"
            )
        problems.append(FileProblem("key", path, message))
    return None


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context with propylon's defaults; TlsFilesError says what is wrong."""
    errors, _warnings = check_files(cert_file, key_file)
    if errors:
        raise TlsFilesError(errors)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
    # Every suite left is strong, so the client's order wins (Mozilla: a phone without AES
    # instructions prefers ChaCha20); Python sets server preference by default.
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    context.num_tickets = TLS13_TICKETS
    context.set_alpn_protocols(list(ALPN))
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        # The checks above passed, so this is something only OpenSSL objects to (a key
        # type or size it refuses, or a file replaced between the two reads).
        problem = FileProblem("cert", cert_file, f"OpenSSL refused it: {exc}")
        raise TlsFilesError([problem]) from None
    return context
