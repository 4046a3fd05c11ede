import pytest
from harness.measure import RunRecord
from harness.report import BROKEN, FAIL, PASS, REPORT, judge, summarize
from harness.scenarios import BY_NAME, PROFILE_PATH, Scenario, select


def run(
    scenario: str,
    entry: str,
    rps: float,
    p99: float = 1.0,
    rss: float = 30.0,
    round_number: int = 1,
    problem: str = "",
) -> RunRecord:
    return RunRecord(
        round_number,
        scenario,
        entry,
        problem,
        rps=rps,
        p50_ms=p99 / 2,
        p99_ms=p99,
        requests=int(rps),
        rss_mib=rss,
    )


def test_ratio_is_of_the_medians_over_rounds() -> None:
    records = [
        run("proxy", "nginx", 100, round_number=1),
        run("proxy", "propylon", 70, round_number=1),
        run("proxy", "nginx", 90, round_number=2),
        run("proxy", "propylon", 10, round_number=2),
        run("proxy", "nginx", 110, round_number=3),
        run("proxy", "propylon", 65, round_number=3),
    ]
    verdict = judge(BY_NAME["proxy"], summarize(records), records)

    assert verdict.ratio == pytest.approx(0.65)
    assert verdict.outcome == PASS


def test_a_missed_ratio_or_p99_fails_with_the_reason() -> None:
    records = [run("proxy", "nginx", 100, p99=2.0), run("proxy", "propylon", 50, p99=5.0)]
    verdict = judge(BY_NAME["proxy"], summarize(records), records)

    assert verdict.outcome == FAIL
    assert verdict.reasons == ("ratio 0.50 < 0.60", "p99 ratio 2.50 > 2.0")


def test_a_run_with_a_problem_is_left_out_and_a_side_without_runs_is_broken() -> None:
    records = [
        run("big", "nginx", 100),
        run("big", "propylon", 0, problem="did not answer 200"),
        run("big", "propylon", 0, round_number=2, problem="exited"),
    ]
    verdict = judge(BY_NAME["big"], summarize(records), records)

    assert verdict.outcome == BROKEN
    assert verdict.reasons == ("propylon: did not answer 200 (and 1 more runs)",)


def test_upload_memory_bound_is_judged() -> None:
    records = [run("upload", "nginx", 10), run("upload", "propylon", 10, rss=70.0)]
    verdict = judge(BY_NAME["upload"], summarize(records), records)

    assert verdict.outcome == FAIL
    assert verdict.reasons == ("peak RSS 70.0 MiB >= 64",)


def test_worker_scaling_is_reported_on_two_cpus_and_judged_on_four() -> None:
    records = [
        run("proxy", "nginx", 100),
        run("proxy", "propylon", 100),
        run("workers2", "nginx", 180),
        run("workers2", "propylon", 120),
    ]
    summary = summarize(records)

    small = judge(BY_NAME["workers2"], summary, records, cpus=2)
    large = judge(BY_NAME["workers2"], summary, records, cpus=8)

    assert small.scaling == pytest.approx(1.2)
    assert (small.outcome, large.outcome) == (REPORT, FAIL)


def test_scenarios_are_chosen_by_name_in_catalogue_order() -> None:
    assert [s.name for s in select("big, proxy,soak")] == ["proxy", "big"]
    with pytest.raises(ValueError, match="unknown scenario nope"):
        select("proxy,nope")


def test_only_the_rs256_scenarios_give_propylon_an_rs256_key() -> None:
    rs256 = {s.name for s in BY_NAME.values() if s.algorithm == "RS256"}

    assert rs256 == {"jwt-rs256", "jwt-rs256-rotate", "edge", "edge-workers2", "edge-redis"}
    assert all(s.bearer for s in BY_NAME.values() if s.rotate)


FEATURE = Scenario("feature", "as proxy, + one gateway feature", PROFILE_PATH, min_vs_proxy=0.85)


def test_a_feature_scenario_passes_against_proxy_in_the_same_run() -> None:
    records = [
        run("proxy", "nginx", 200),
        run("proxy", "propylon", 100),
        run("feature", "nginx", 200),
        run("feature", "propylon", 90),
    ]
    verdict = judge(FEATURE, summarize(records), records)

    assert verdict.vs_proxy == pytest.approx(0.90)
    assert verdict.ratio == pytest.approx(0.45)  # shown, but not what this scenario is held to
    assert verdict.target == "vs proxy >= 0.85"
    assert (verdict.outcome, verdict.reasons) == (PASS, ())


def test_a_feature_scenario_below_its_share_of_proxy_fails_with_the_reason() -> None:
    records = [
        run("proxy", "nginx", 200),
        run("proxy", "propylon", 100),
        run("feature", "nginx", 200),
        run("feature", "propylon", 80),
    ]
    verdict = judge(FEATURE, summarize(records), records)

    assert verdict.vs_proxy == pytest.approx(0.80)
    assert verdict.outcome == FAIL
    assert verdict.reasons == ("vs proxy 0.80 < 0.85",)


@pytest.mark.parametrize("proxy_runs", ["absent", "broken"])
def test_without_a_proxy_run_the_share_is_not_judged_and_the_verdict_says_so(
    proxy_runs: str,
) -> None:
    records = [run("feature", "nginx", 200), run("feature", "propylon", 10)]
    if proxy_runs == "broken":
        records += [
            run("proxy", "nginx", 200),
            run("proxy", "propylon", 0, problem="did not answer 200"),
        ]
    verdict = judge(FEATURE, summarize(records), records)

    assert verdict.vs_proxy is None
    assert verdict.outcome == REPORT  # neither a pass nor a fail: it was not measured
    assert verdict.reasons == ("vs proxy not judged: no usable propylon run of proxy in this run",)


def test_the_feature_scenarios_are_the_proxy_scenario_plus_one_gateway_feature() -> None:
    proxy = BY_NAME["proxy"]
    features = {
        name: BY_NAME[name] for name in ("access-log", "tracing-export", "tracing-propagation")
    }

    assert {name: s.min_vs_proxy for name, s in features.items()} == {
        "access-log": 0.85,
        "tracing-export": 0.70,
        "tracing-propagation": 0.95,
    }
    assert all(s.path == proxy.path and s.min_ratio is None for s in features.values())
    assert [(s.access_log, s.otlp_export, s.traceparent) for s in features.values()] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
