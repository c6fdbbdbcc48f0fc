"""Injected faults: each kind at roughly its rate, reproducible per seed, changeable live."""

from __future__ import annotations

import time

import httpx
import pytest

from connector.sandbox.testing import running_sandbox
from tests.sandbox.conftest import post_batch, status, xml

CALLS = 200


def _codes(sb, n: int = CALLS) -> list[int]:
    with httpx.Client(timeout=10) as client:
        return [
            client.get(f"{sb.url}/rest/v1/profiles/nobody", params={"client": "f"}).status_code
            for _ in range(n)
        ]


def test_fail_rate_share_kinds_and_reproducible() -> None:
    runs = []
    for _ in range(2):
        with running_sandbox(fail_rate=0.3, seed=7) as sb:
            codes = _codes(sb)
            injected = sb.snapshot()["faults"]["injected"]["f"]
        runs.append(codes)
        failures = [c for c in codes if c in (500, 502)]
        assert 0.2 * CALLS < len(failures) < 0.4 * CALLS
        assert {500, 502} == set(failures)
        assert set(codes) - {500, 502} == {404}
        assert injected == {"fail_500": failures.count(500), "fail_502": failures.count(502)}
    assert runs[0] == runs[1]
    with running_sandbox(fail_rate=0.3, seed=8) as sb:
        assert _codes(sb) != runs[0]


def test_throttle_rate_429_with_retry_after_or_503() -> None:
    with running_sandbox(throttle_rate=0.25, seed=3) as sb, httpx.Client(timeout=10) as client:
        responses = [
            client.get(f"{sb.url}/rest/v1/profiles/x", params={"client": "f"}) for _ in range(CALLS)
        ]
    throttled = [r for r in responses if r.status_code in (429, 503)]
    assert 0.15 * CALLS < len(throttled) < 0.35 * CALLS
    assert {r.status_code for r in throttled} == {429, 503}
    assert all(r.headers["retry-after"] == "1" for r in throttled)


def test_latency() -> None:
    with running_sandbox(latency_ms=150) as sb, httpx.Client(timeout=10) as client:
        started = time.perf_counter()
        for _ in range(3):
            client.get(f"{sb.url}/rest/v1/profiles/x", params={"client": "f"})
        assert time.perf_counter() - started >= 0.45
        started = time.perf_counter()
        client.get(f"{sb.url}/_sandbox/state")  # admin is never slowed
        assert time.perf_counter() - started < 0.15


def test_drop_rate_closes_connection_without_response() -> None:
    with running_sandbox(drop_rate=0.3, seed=11) as sb:
        outcomes = []
        for _ in range(100):
            try:
                with httpx.Client(timeout=5) as client:
                    outcomes.append(
                        client.get(
                            f"{sb.url}/rest/v1/profiles/x", params={"client": "f"}
                        ).status_code
                    )
            except httpx.RemoteProtocolError:
                outcomes.append("dropped")
        dropped = outcomes.count("dropped")
        assert 15 < dropped < 45
        assert set(outcomes) == {"dropped", 404}  # never a 500 in place of the drop
        assert sb.snapshot()["faults"]["injected"]["f"] == {"drop": dropped}


def test_drop_after_handling_loses_only_the_answer() -> None:
    with running_sandbox(drop_rate=1.0, drop_when="after", processing_delay_s=0.0) as sb:
        with pytest.raises(httpx.RemoteProtocolError), httpx.Client(timeout=5) as client:
            client.post(sb.target_url("lost"), content=b"batch=pcId,a\n1,x")
        sb.wait_idle()
        batches = sb.snapshot()["target"]["clients"]["lost"]["batches"]
        assert len(batches) == 1 and batches[0]["status"] == "complete"


def test_stuck_rate_batches_never_complete() -> None:
    with (
        running_sandbox(stuck_rate=0.5, seed=5, processing_delay_s=0.0) as sb,
        httpx.Client(timeout=10) as client,
    ):
        answers = [post_batch(client, sb, f"batch=pcId,a\nid{i},x", "stk") for i in range(10)]
        sb.wait_idle()
        sb.advance_clock(3600)
        statuses = [status(client, a["batchStatus"])["status"] for a in answers]
        stuck = statuses.count("stuck")
        assert 2 <= stuck <= 8 and set(statuses) == {"stuck", "complete"}
        for i, state in enumerate(statuses):  # a stuck batch is never applied
            found = client.get(f"{sb.url}/rest/v1/profiles/id{i}", params={"client": "stk"})
            assert found.status_code == (404 if state == "stuck" else 200)


def test_faults_change_at_runtime_by_handle_and_admin_endpoint() -> None:
    with running_sandbox(seed=1) as sb, httpx.Client(timeout=10) as client:
        assert set(_codes(sb, 20)) == {404}
        sb.set_faults(fail_rate=1.0)
        assert set(_codes(sb, 20)) <= {500, 502}
        response = client.post(
            f"{sb.url}/_sandbox/faults", json={"fail_rate": 0, "throttle_rate": 1}
        )
        assert response.status_code == 200 and response.json()["throttle_rate"] == 1
        assert set(_codes(sb, 20)) <= {429, 503}
        bad = client.post(f"{sb.url}/_sandbox/faults", json={"nonsense": 1})
        assert bad.status_code == 400 and "nonsense" in bad.text
        assert client.post(f"{sb.url}/_sandbox/faults", json={"fail_rate": 2}).status_code == 400
        with pytest.raises(TypeError):
            sb.set_faults(bogus=1)


def test_faults_apply_to_target_and_copernica_not_admin() -> None:
    with running_sandbox(fail_rate=1.0, seed=2) as sb, httpx.Client(timeout=10) as client:
        assert client.post(sb.target_url("t"), content=b"batch=pcId,a\n1,x").status_code in (
            500,
            502,
        )
        assert client.get(f"{sb.url}/v3/database/a/profiles").status_code in (500, 502)
        assert client.get(f"{sb.url}/").status_code == 200
        state = client.get(f"{sb.url}/_sandbox/state").json()
        assert "t" not in state["target"]["clients"]  # the failed call never reached the API
        assert sum(state["faults"]["injected"]["t"].values()) == 1
        assert sum(state["faults"]["injected"]["copernica"].values()) == 1


def test_admin_clock_endpoint() -> None:
    with running_sandbox(processing_delay_s=100) as sb, httpx.Client(timeout=10) as client:
        answer = post_batch(client, sb, "batch=pcId,a\n1,x", "clk")
        sb.wait_idle()
        assert status(client, answer["batchStatus"])["status"] == "incomplete"
        moved = client.post(f"{sb.url}/_sandbox/clock", json={"advance": 101}).json()
        assert moved["now"] > time.time() + 100
        assert status(client, answer["batchStatus"])["status"] == "complete"
        assert client.post(f"{sb.url}/_sandbox/clock", json={"advance": -1}).status_code == 400
        summary = client.get(f"{sb.url}/").json()
        assert summary["target"]["clk"]["batches"] == 1
        assert xml(client.post(sb.target_url("clk"), content=b"x").text)["success"] == "false"
