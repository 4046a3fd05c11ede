from pathlib import Path

from harness.wrk import LoadSpec, parse_wrk, wrk_argv

REPORT = """Running 2s test @ http://127.0.0.1:8000/profiles/12345
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.12ms    2.79ms  16.74ms   66.27%
    Req/Sec    15.53k     1.82k   19.82k    70.00%
  Latency Distribution
     50%  812.00us
     75%    5.87ms
     90%    8.01ms
     99%    1.23s
  31214 requests in 2.02s, 10.36MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:  15450.68
Transfer/sec:      5.13MB
"""


def test_a_wrk_report_gives_rate_percentiles_in_ms_and_failures() -> None:
    report = parse_wrk(REPORT)

    assert report.requests == 31214
    assert report.rps == 15450.68
    assert report.p50_ms == 0.812
    assert report.p99_ms == 1230.0
    assert report.non_2xx == 17
    assert report.socket_errors == 7


def test_output_that_is_not_a_wrk_report_reads_as_nothing_done() -> None:
    report = parse_wrk("wrk: unable to connect\n")

    assert (report.requests, report.rps, report.p99_ms) == (0, 0.0, None)


def test_a_token_file_runs_the_rotation_script_and_cpus_pin_wrk() -> None:
    spec = LoadSpec("http://127.0.0.1:8000/x", 2.0, 64, 1, cpus="1", tokens_file=Path("/t"))
    argv = wrk_argv(spec)

    assert argv[:3] == ["taskset", "-c", "1"]
    assert argv[argv.index("-s") + 1].endswith("rotate-tokens.lua")
    assert argv[-3:] == ["http://127.0.0.1:8000/x", "--", "/t"]
    assert "-d2s" in argv and "-c64" in argv
