"""Sequential uploads through a proxy, timed one by one (run as a script by the harness).

    python upload_client.py --port 8000 --path /upload --bytes 10485760 --seconds 10

Uploads the same body over one keep-alive connection (a new one if the server closes it) until
``--seconds`` have passed and at least ``--min-count`` uploads were made, after ``--warmup``
untimed ones. An upload counts as done when its response has been read; it succeeds when that
response is 200 and U's ``X-Received-Bytes`` says the whole body arrived. Prints one JSON
object: count, failures, mean/p50/p99 seconds per upload.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time


def upload_once(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[bool, str]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    response.read()
    received = int(response.getheader("X-Received-Bytes") or 0)
    if response.status != 200:
        return False, f"status {response.status}"
    if received < len(body):
        return False, f"U received {received} of {len(body)} body bytes"
    return True, ""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/upload")
    parser.add_argument("--bytes", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    body = bytes(range(256)) * (args.bytes // 256) + b"x" * (args.bytes % 256)
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    times: list[float] = []
    failures: list[str] = []
    done = 0
    started = time.monotonic()
    while (
        done < args.warmup
        or time.monotonic() - started < args.seconds
        or len(times) < args.min_count
    ) and len(failures) < 5:
        began = time.perf_counter()
        try:
            ok, why = upload_once(conn, args.path, body)
        except (OSError, http.client.HTTPException) as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        elapsed = time.perf_counter() - began
        done += 1
        if done <= args.warmup:
            started = time.monotonic()
            continue
        if ok:
            times.append(elapsed)
        else:
            failures.append(why)
    conn.close()
    ordered = sorted(times)
    report = {
        "count": len(times),
        "failures": len(failures),
        "failure_reasons": sorted(set(failures)),
        "seconds": time.monotonic() - started,
        "mean_s": statistics.fmean(times) if times else None,
        "p50_s": statistics.median(times) if times else None,
        "p99_s": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if times else None,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
