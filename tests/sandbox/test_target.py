"""Adobe Target over HTTP: the seeds verbatim, semantics, limits, statuses, profile reads, auth."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from connector.sandbox.options import MAX_BATCH_BYTES
from connector.sandbox.testing import running_sandbox
from tests.sandbox.conftest import (
    curl_post_file,
    mbox,
    post_batch,
    profile,
    status,
    submit_and_wait,
    values,
    xml,
)

V1_SAMPLE = """batch=pcId, param1, param2, param3
1000000000000-100000.01, value1, value2, valueeeeeee
1000000000000-100000.01, value1, value3, valueeeeeee
1367320065048-801944.01_00, value1, value6, valueeeeeee
1000000000000-100000.01, value1, value6, valueeeeeee
"""
V1_CONTENT_SAMPLE = """pcId, param1, param2, param3, param4
123, value1
124, value1,,,value4
125,,value2
126,value1,value2,value3,value4
"""
V2_SAMPLE = (
    "batch=pcId, param1, param2, param3, param4 123, value1 124, value1,,, value4 "
    "125,, value2 126, value1, value2, value3, value4\n"
)


# ---- the seeds, with curl as written


def test_v2_seed_sample_with_seed_curl_command(shared, http, tmp_path: Path) -> None:
    batch = tmp_path / "BATCH.TXT"
    batch.write_text(V2_SAMPLE)
    answer = xml(curl_post_file(batch, f"{shared.url}/m2/seedv2/v2/profile/batchUpdate"))
    assert answer["success"] == "true"
    assert answer["message"] == "Batch submitted for processing"
    assert "/m2/seedv2/v2/profile/batchStatus?batchId=seedv2-" in answer["batchStatus"]
    assert answer["batchStatus"].endswith("&m2Node=00")
    shared.wait_idle()
    detail = status(http, answer["batchStatus"])
    assert detail["status"] == "complete" and detail["batchSize"] == "4"
    assert values(http, shared, "seedv2", "124") == {"param1": "value1", "param4": "value4"}
    assert values(http, shared, "seedv2", "125") == {"param2": "value2"}
    assert values(http, shared, "seedv2", "126") == {f"param{i}": f"value{i}" for i in (1, 2, 3, 4)}


def test_v1_seed_samples_with_seed_curl_command(shared, http, tmp_path: Path) -> None:
    # v1 never creates: make the profiles exist first (v2), then run the seed verbatim.
    submit_and_wait(http, shared, "batch=pcId,seen\n1000000000000-100000.01,1", "seedv1")
    batch = tmp_path / "batch"
    batch.write_text(V1_SAMPLE)
    answer = xml(curl_post_file(batch, f"{shared.url}/m2/seedv1/profile/batchUpdate"))
    assert answer["success"] == "true"
    assert "/m2/seedv1/profile/batchStatus?batchId=" in answer["batchStatus"]
    shared.wait_idle()
    detail = status(http, answer["batchStatus"])
    assert detail["batchSize"] == "4"
    assert (detail["successfulUpdates"], detail["profilesNotFound"], detail["failedUpdates"]) == (
        "3",
        "1",
        "0",
    )
    # later rows for the same id win; untouched values stay
    assert values(http, shared, "seedv1", "1000000000000-100000.01") == {
        "seen": "1",
        "param1": "value1",
        "param2": "value6",
        "param3": "valueeeeeee",
    }
    assert profile(http, shared, "seedv1", "1367320065048-801944.01_00").status_code == 404


def test_v1_seed_content_sample_needs_the_batch_prefix(shared, http, tmp_path: Path) -> None:
    raw = tmp_path / "content"
    raw.write_text(V1_CONTENT_SAMPLE)
    refused = xml(curl_post_file(raw, shared.target_url("seedc", "v2")))
    assert refused["success"] == "false" and refused["batchStatus"] == ""
    assert "batch=" in refused["message"]
    prefixed = tmp_path / "prefixed"
    prefixed.write_text("batch=" + V1_CONTENT_SAMPLE)
    answer = xml(curl_post_file(prefixed, shared.target_url("seedc", "v2")))
    assert answer["success"] == "true"
    shared.wait_idle()
    assert values(http, shared, "seedc", "124") == {"param1": "value1", "param4": "value4"}
    assert values(http, shared, "seedc", "125") == {"param2": "value2"}


# ---- semantics


def test_v1_updates_only_existing_v2_creates(shared, http) -> None:
    detail = submit_and_wait(http, shared, "batch=thirdPartyId,a\nu1,x\nu2,y", "sem", "v1")
    assert detail["profilesNotFound"] == "2" and detail["successfulUpdates"] == "0"
    assert values(http, shared, "sem", "u1", third=True) is None
    submit_and_wait(http, shared, "batch=thirdPartyId,a\nu1,x", "sem", "v2")
    detail = submit_and_wait(http, shared, "batch=thirdPartyId,a\nu1,z\nu2,y", "sem", "v1")
    assert (detail["successfulUpdates"], detail["profilesNotFound"]) == ("1", "1")
    assert values(http, shared, "sem", "u1", third=True) == {"a": "z"}


def test_empty_values_never_clear_and_later_rows_win(http) -> None:
    # The merging reading of v2; under the default override rule see test_v2_override.py.
    with running_sandbox(v2_merge=True, processing_delay_s=0.0) as sb:
        submit_and_wait(http, sb, "batch=pcId,a,b,c\np1,1,2,3", "empt")
        submit_and_wait(http, sb, "batch=pcId,a,b,c\np1,,,\np1,9\np1,,8,\np1,7", "empt")
        assert values(http, sb, "empt", "p1") == {"a": "7", "b": "8", "c": "3"}
        detail = submit_and_wait(http, sb, "batch=pcId,a\nnew1,", "empt")
        assert detail["successfulUpdates"] == "1"
        assert values(http, sb, "empt", "new1") is None  # only empty values: nothing created


def test_profile_read_documented_shape_and_modified_times(http) -> None:
    with running_sandbox(processing_delay_s=0.0, clock=lambda: 1_800_000_000.0) as sb:
        submit_and_wait(http, sb, "batch=thirdPartyId,a,b\nc-1,x,y", "rd")
        assert mbox(http, sb, "rd", third="c-1").json()["committed"] == 2  # else b= drops a
        sb.advance_clock(60)
        submit_and_wait(http, sb, "batch=thirdPartyId,a,b\nc-1,,z", "rd")
        body = profile(http, sb, "rd", "c-1", third=True).json()
        assert body["client"] == "rd" and body["visitorId"]
        assert body["modifiedAt"] == "2027-01-15T08:01:00.000Z"
        assert body["profileAttributes"] == {
            "a": {"value": "x", "modifiedAt": "2027-01-15T08:00:00.000Z"},
            "b": {"value": "z", "modifiedAt": "2027-01-15T08:01:00.000Z"},
        }
        missing = profile(http, sb, "rd", "nobody", third=True)
        assert missing.status_code == 404
        assert missing.json() == {
            "status": 404,
            "message": "No profile found for client rd with third party id=nobody",
        }
        missing = profile(http, sb, "rd", "123-4")
        assert missing.json()["message"] == "No profile found for client rd with mboxPC=123-4"


def test_encoding_rules_over_http(shared, http) -> None:
    bad = post_batch(http, shared, "batch=pcId,a\n1,x\n2,100%", "enc")
    assert bad["success"] == "false" and bad["batchStatus"] == ""
    assert "Unexpected error" in bad["message"]
    assert post_batch(http, shared, b"batch=pcId,a\n1,%C3%28", "enc")["success"] == "false"
    assert values(http, shared, "enc", "1") is None  # nothing of a rejected batch applied
    cut = submit_and_wait(http, shared, "batch=pcId,a\n1,x+y%2Bz&2,lost\n3,lost", "enc")
    assert cut["batchSize"] == "1"
    assert values(http, shared, "enc", "1") == {"a": "x y+z"}
    assert values(http, shared, "enc", "3") is None
    empty = post_batch(http, shared, "batch=pcId,a&\n1,x", "enc")
    assert (empty["success"], empty["message"]) == ("false", "Batch is empty")


def test_content_type_form_or_none(shared, http) -> None:
    body = b"batch=pcId,a\nct1,x"
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {}):
        response = http.post(shared.target_url("ctype"), content=body, headers=headers)
        assert xml(response.text)["success"] == "true"


# ---- limits


def test_batch_bytes_limit_is_strictly_less_than(http) -> None:
    with running_sandbox(max_batch_bytes=1000, processing_delay_s=0.0) as sb:
        head = b"batch=pcId,a\n1,"
        ok = head + b"x" * (999 - len(head))
        assert post_batch(http, sb, ok, "size")["success"] == "true"
        refused = post_batch(http, sb, ok + b"x", "size")
        assert refused["success"] == "false" and "too large" in refused["message"]


def test_default_size_limit_is_50_mb(shared, http) -> None:
    assert MAX_BATCH_BYTES == 50_000_000
    body = b"batch=pcId,a\n1," + b"x" * (MAX_BATCH_BYTES - 15)
    assert len(body) == MAX_BATCH_BYTES
    refused = post_batch(http, shared, body, "big")
    assert refused["success"] == "false" and "50,000,000" in refused["message"]


def test_rows_limit(http) -> None:
    with running_sandbox(max_batch_rows=3, processing_delay_s=0.0) as sb:
        assert post_batch(http, sb, "batch=pcId,a\n1,x\n2,x\n3,x", "rows")["success"] == "true"
        refused = post_batch(http, sb, "batch=pcId,a\n1,x\n2,x\n3,x\n4,x", "rows")
        assert refused["success"] == "false" and "too many rows" in refused["message"]


def test_daily_quota_per_client_and_next_day(http) -> None:
    with running_sandbox(
        daily_quota=10, processing_delay_s=0.0, clock=lambda: 1_800_000_000.0
    ) as sb:
        six = "batch=pcId,a\n" + "\n".join(f"{i},x" for i in range(6))
        five = "batch=pcId,a\n" + "\n".join(f"{i},x" for i in range(5))
        four = "batch=pcId,a\n" + "\n".join(f"{i},x" for i in range(4))
        assert post_batch(http, sb, six, "q")["success"] == "true"
        refused = post_batch(http, sb, five, "q")
        assert refused["success"] == "false" and "quota" in refused["message"].lower()
        assert post_batch(http, sb, five, "other")["success"] == "true"  # per client
        assert post_batch(http, sb, four, "q")["success"] == "true"  # exactly 10
        assert post_batch(http, sb, "batch=pcId,a\n1,x", "q")["success"] == "false"
        state = http.get(f"{sb.url}/_sandbox/state").json()["target"]["clients"]["q"]
        assert state["quota"]["used_today"] == 10 == state["quota"]["limit"]
        assert len(state["batches"]) == 2 and len(state["rejected_batches"]) == 2
        sb.advance_clock(86_400)
        assert post_batch(http, sb, six, "q")["success"] == "true"


def test_calls_per_minute_across_target_endpoints(http) -> None:
    with running_sandbox(calls_per_minute=4, processing_delay_s=0.0) as sb:
        answer = post_batch(http, sb, "batch=pcId,a\n1,x", "rate")
        for _ in range(3):
            assert http.get(answer["batchStatus"]).status_code == 200
        limited = http.get(answer["batchStatus"])
        assert limited.status_code == 503 and limited.headers["retry-after"]
        assert http.post(sb.target_url("rate"), content=b"batch=pcId,a\n1,x").status_code == 503
        other = sb.target_url("other").replace("batchUpdate", "batchStatus") + "?batchId=x"
        assert http.get(other).status_code == 404  # per client: "other" is not limited
        assert profile(http, sb, "rate", "1").status_code == 200  # reads are not metered
        sb.advance_clock(61)
        assert http.get(answer["batchStatus"]).status_code == 200


def test_third_party_id_rules_fail_rows_not_batch(shared, http) -> None:
    ok256 = "i" * 256
    body = f"batch=thirdPartyId,a\ngood,1\nhas%2Bplus,1\nhas%2Fslash,1\n{ok256},1\n{ok256}x,1\n,1"
    detail = submit_and_wait(http, shared, body, "tpid")
    assert (detail["successfulUpdates"], detail["failedUpdates"]) == ("2", "4")
    assert [p["id"] for p in detail["profiles"]] == ["has+plus", "has/slash", ok256 + "x", None]
    assert all(p["status"] == "failed" for p in detail["profiles"])
    assert values(http, shared, "tpid", ok256, third=True) == {"a": "1"}


def test_profile_size_limit(http) -> None:
    with running_sandbox(max_profile_bytes=100, processing_delay_s=0.0) as sb:
        e = "%C3%A9"  # two UTF-8 bytes each
        body = f"batch=pcId,a\nfits,{e * 49}\ntoo,{e * 50}\nbig,{'x' * 100}\nsmall,x"
        detail = submit_and_wait(http, sb, body, "psize")
        assert (detail["successfulUpdates"], detail["failedUpdates"]) == ("2", "2")
        assert [p["id"] for p in detail["profiles"]] == ["too", "big"]
        # merged with what is stored (committed by an mbox call): now it would be too big
        assert mbox(http, sb, "psize", pc="fits").json()["committed"] == 1
        detail = submit_and_wait(http, sb, f"batch=pcId,b\nfits,{'y' * 10}\nsmall,y", "psize")
        assert (detail["successfulUpdates"], detail["failedUpdates"]) == ("1", "1")
        assert values(http, sb, "psize", "fits") == {"a": "\u00e9" * 49}


def test_v1_status_has_no_profile_rows(shared, http) -> None:
    submit_and_wait(http, shared, "batch=pcId,a\nv1p,x", "v1rows")
    detail = submit_and_wait(http, shared, "batch=pcId,a\nv1p,x,extra\n,y", "v1rows", "v1")
    assert detail["failedUpdates"] == "2" and detail["profiles"] == []


# ---- statuses


def test_status_goes_incomplete_then_complete(http) -> None:
    with running_sandbox(processing_delay_s=30.0) as sb:
        answer = post_batch(http, sb, "batch=pcId,a\n1,x\n2,y", "st")
        sb.wait_idle()
        pending = status(http, answer["batchStatus"])
        assert pending["status"] == "incomplete" and pending["consumedCount"] == "0"
        summary = status(http, answer["batchStatus"], details=False)
        assert set(summary) == {"batchId", "status", "batchSize", "profiles"}
        sb.advance_clock(31)
        done = status(http, answer["batchStatus"])
        assert done["status"] == "complete" and done["batchId"] in answer["batchStatus"]
        assert (done["consumedCount"], done["successfulUpdates"]) == ("2", "2")


def test_status_with_real_delay(http) -> None:
    with running_sandbox(processing_delay_s=0.3) as sb:
        answer = post_batch(http, sb, "batch=pcId,a\n1,x", "real")
        assert status(http, answer["batchStatus"])["status"] == "incomplete"
        time.sleep(0.4)
        sb.wait_idle()
        assert status(http, answer["batchStatus"])["status"] == "complete"


def test_only_last_ten_statuses_for_24_hours(http) -> None:
    with running_sandbox(processing_delay_s=0.0) as sb:
        urls = [
            post_batch(http, sb, f"batch=pcId,a\n{i},x", "win")["batchStatus"] for i in range(11)
        ]
        gone = http.get(urls[0])
        assert gone.status_code == 404
        assert "only the last 10 batches" in xml(gone.text)["message"]
        assert http.get(urls[1]).status_code == 200
        assert http.get(urls[1].replace("&m2Node=00", "")).status_code == 200
        missing = http.get(urls[1].split("?")[0])
        assert missing.status_code == 400
        sb.advance_clock(24 * 3600 + 1)
        assert http.get(urls[10]).status_code == 404
        state = http.get(f"{sb.url}/_sandbox/state").json()["target"]["clients"]["win"]
        assert len({b["sha256"] for b in state["batches"]}) == 11  # history kept for asserts


def test_status_url_can_name_another_host_and_raw_ampersand(http) -> None:
    with running_sandbox(
        status_base_url="http://edge.example:1", status_url_raw_ampersand=True
    ) as sb:
        response = http.post(sb.target_url("host"), content=b"batch=pcId,a\n1,x")
        assert (
            "<batchStatus>http://edge.example:1/m2/host/v2/profile/batchStatus?batchId="
            in response.text
        )
        assert "&m2Node=00</batchStatus>" in response.text


# ---- auth


def test_token_auth_for_target(http) -> None:
    with running_sandbox(token="s3cret", processing_delay_s=0.0) as sb:
        url = sb.target_url("auth")
        body = b"batch=pcId,a\n1,x"
        denied = http.post(url, content=body)
        assert denied.status_code == 403 and "Authorization: Bearer" in denied.text
        assert (
            http.post(url, content=body, headers={"authorization": "Bearer nope"}).status_code
            == 403
        )
        ok = http.post(url, content=body, headers={"Authorization": "Bearer s3cret"})
        assert xml(ok.text)["success"] == "true"
        legacy = http.post(url, content=body, headers={"access_token": "s3cret"})
        assert xml(legacy.text)["success"] == "true"
        assert profile(http, sb, "auth", "1").status_code == 403
        read = http.get(
            f"{sb.url}/rest/v1/profiles/1?client=auth", headers={"Authorization": "Bearer s3cret"}
        )
        assert read.status_code == 200
        assert http.get(f"{sb.url}/_sandbox/state").status_code == 200  # admin is open


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_accepted_batch_is_in_state_once(shared, http, version: str) -> None:
    client = f"st{version}"
    for i in range(3):
        post_batch(http, shared, f"batch=pcId,a\n{i},x", client, version)
    batches = http.get(f"{shared.url}/_sandbox/state").json()["target"]["clients"][client][
        "batches"
    ]
    assert [b["rows"] for b in batches] == [1, 1, 1]
    assert len({b["batch_id"] for b in batches}) == 3 and all(
        b["version"] == version for b in batches
    )
    assert {"sha256", "accepted_at", "status"} <= set(batches[0])


def test_httpx_sees_connection_refused_after_stop() -> None:
    with running_sandbox() as sb:
        url = sb.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
