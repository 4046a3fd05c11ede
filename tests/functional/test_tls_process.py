"""TLS on the real `propylon run` and `propylon check` commands: SIGHUP reloads the
certificate in every worker, one instance per TLS port, bad files are config errors."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path

from tests.support.certificates import TestCA, serial_of
from tests.support.processes import gateway_process, ocelot_file
from tests.support.upstreams import free_port


async def _served_serial(port: int, context: ssl.SSLContext) -> int:
    """Handshake, GET /stats over it; the serial number of the certificate served."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    try:
        writer.write(b"GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return serial_of(der)
    finally:
        writer.close()


def _serial_of_file(path: Path) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificates(path.read_bytes())[0].serial_number


def _propylon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "propylon", *args], capture_output=True, text=True, timeout=30
    )


async def test_sighup_reloads_the_certificate_in_every_worker(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    first_cert, first_key = ca.issue("first")
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    cert.write_bytes(first_cert.read_bytes())
    key.write_bytes(first_key.read_bytes())
    port, tls_port = free_port(), free_port()
    context = ca.client_context()
    flags = ("--tls-cert", str(cert), "--tls-key", str(key), "--tls-port", str(tls_port))
    with gateway_process(ocelot_file(tmp_path, 9), port, 2, args=flags) as proc:
        assert await _served_serial(tls_port, context) == _serial_of_file(first_cert)
        # A connection made before the reload, kept open across it.
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", tls_port, ssl=context, server_hostname="localhost"
        )

        renewed_cert, renewed_key = ca.issue("renewed")
        cert.write_bytes(renewed_cert.read_bytes())
        key.write_bytes(renewed_key.read_bytes())
        proc.send_signal(signal.SIGHUP)
        renewed = _serial_of_file(renewed_cert)
        for _ in range(100):
            if await _served_serial(tls_port, context) == renewed:
                break
            await asyncio.sleep(0.05)
        # Both workers: SO_REUSEPORT spreads new connections over them.
        serials = {await _served_serial(tls_port, context) for _ in range(20)}
        assert serials == {renewed}

        writer.write(b"GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200 ")
        writer.close()

        key.write_text("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        serials = {await _served_serial(tls_port, context) for _ in range(10)}
        assert serials == {renewed}
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
        assert proc.stdout is not None
        log = proc.stdout.read().decode()
    assert f"https://127.0.0.1:{tls_port}" in log
    assert log.count("TLS certificate reloaded") == 2  # once per worker
    failed = [line for line in log.splitlines() if "TLS certificate reload failed" in line]
    assert len(failed) == 2
    assert all(str(key) in line and "ERROR" in line for line in failed)
    assert "Traceback" not in log


async def test_a_second_instance_on_the_tls_port_refuses(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    cert, key = ca.issue("server")
    port, tls_port = free_port(), free_port()
    flags = ("--tls-cert", str(cert), "--tls-key", str(key), "--tls-port", str(tls_port))
    with gateway_process(ocelot_file(tmp_path, 9), port, 1, args=flags):
        second = await asyncio.to_thread(
            _propylon,
            "run",
            "--config",
            str(tmp_path / "ocelot.json"),
            "--port",
            str(free_port()),
            *flags,
        )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{tls_port}: another propylon (pid" in second.stderr
    assert "choose another --tls-port" in second.stderr


def _native(tmp_path: Path, cert: Path, key: Path) -> Path:
    path = tmp_path / "propylon.json"
    path.write_text(
        json.dumps(
            {
                "propylon": 1,
                "tls": {"cert_file": str(cert), "key_file": key.name, "port": 8443},
                "routes": [{"path": "/x", "downstream": {"hosts": ["127.0.0.1:9"]}}],
            }
        )
    )
    return path


def test_check_names_the_key_path_and_file_of_a_bad_key(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path)
    cert, _key = ca.issue("server")
    _other_cert, other_key = ca.issue("other")
    config = _native(tmp_path, cert, other_key)
    result = _propylon("check", str(config))
    assert result.returncode == 1
    assert (
        f"{config}: tls.key_file: error: {other_key}: this private key does not match "
        f"the certificate in {cert}"
    ) in result.stdout

    other_key.write_text("hello\n")
    result = _propylon("check", str(config))
    assert result.returncode == 1
    assert f"{config}: tls.key_file: error: {other_key}: not a PEM private key" in result.stdout

    (tmp_path / "ok.key").write_bytes(_key.read_bytes())
    result = _propylon("check", str(_native(tmp_path, cert, tmp_path / "ok.key")))
    assert result.returncode == 0, result.stdout
    missing = tmp_path / "nowhere.pem"
    result = _propylon("check", str(config), "--tls-cert", str(missing))
    assert result.returncode == 1
    assert f"--tls-cert: error: {missing}: file not found" in result.stdout


def test_run_refuses_a_bad_tls_key_flag_naming_the_file(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path)
    cert, _key = ca.issue("server")
    config = ocelot_file(tmp_path, 9)
    result = _propylon(
        "run", "--config", str(config), "--tls-cert", str(cert), "--tls-key", str(cert)
    )
    assert result.returncode == 2
    assert f"--tls-key: error: {cert}: holds a certificate, not a private key" in result.stderr
    result = _propylon("run", "--config", str(config), "--tls-cert", str(cert))
    assert result.returncode == 2
    assert "--tls-cert: error: needs --tls-key too" in result.stderr
