"""v2's "consecutive batches override" caveat, emulated at its worst, and the mbox call that ends it.

"Consecutive v2 batch update calls without mbox calls in between for the same thirdPartyIds
override the properties updated in the first batch update call." (v2 doc, Caveats)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from click.testing import CliRunner

from connector.sandbox.cli import sandbox_group
from connector.sandbox.testing import running_sandbox
from tests.sandbox.conftest import client_state, mbox, post_batch, submit_and_wait, values

# ---- the rule (on by default)


def test_a_later_batch_drops_what_an_earlier_one_set(shared, http) -> None:
    submit_and_wait(http, shared, "batch=thirdPartyId,a,b\nX,1,2", "ovr")
    submit_and_wait(http, shared, "batch=thirdPartyId,c\nX,3", "ovr")
    assert values(http, shared, "ovr", "X", third=True) == {"c": "3"}  # a and b are lost
    state = client_state(http, shared, "ovr")
    assert state["v2_overridden_values"] == 2
    assert state["v2_pending_profiles"] == 1


def test_an_mbox_call_in_between_keeps_both(shared, http) -> None:
    submit_and_wait(http, shared, "batch=thirdPartyId,a\nX,1", "keep")
    answer = mbox(http, shared, "keep", third="X")
    assert answer.status_code == 200
    assert answer.json()["committed"] == 1
    assert client_state(http, shared, "keep")["v2_pending_profiles"] == 0
    submit_and_wait(http, shared, "batch=thirdPartyId,b\nX,2", "keep")
    assert values(http, shared, "keep", "X", third=True) == {"a": "1", "b": "2"}
    state = client_state(http, shared, "keep")
    assert (state["v2_overridden_values"], state["v2_pending_profiles"]) == (0, 1)
    assert state["mbox_calls"] == 1


def test_an_mbox_call_follows_every_batch_accepted_before_it(shared, http) -> None:
    # No wait in between: the mbox call is handled after batch 1 is applied, before batch 2.
    assert post_batch(http, shared, "batch=thirdPartyId,a\nX,1", "order")["success"] == "true"
    assert mbox(http, shared, "order", third="X").json()["committed"] == 1
    submit_and_wait(http, shared, "batch=thirdPartyId,b\nX,2", "order")
    assert values(http, shared, "order", "X", third=True) == {"a": "1", "b": "2"}


def test_an_empty_value_does_not_carry_the_attribute_so_it_is_lost(shared, http) -> None:
    submit_and_wait(http, shared, "batch=thirdPartyId,a,b\nX,1,", "empty")
    submit_and_wait(http, shared, "batch=thirdPartyId,a,b\nX,,2", "empty")
    assert values(http, shared, "empty", "X", third=True) == {"b": "2"}  # "a=" did not keep a=1
    # A row of only empty values carries nothing: everything pending is lost.
    submit_and_wait(http, shared, "batch=thirdPartyId,a,b\nX,,", "empty")
    assert values(http, shared, "empty", "X", third=True) is None
    assert client_state(http, shared, "empty")["v2_overridden_values"] == 2
    # What an mbox call committed is never lost to a later row.
    submit_and_wait(http, shared, "batch=thirdPartyId,a,b\nY,1,", "empty")
    mbox(http, shared, "empty", third="Y")
    submit_and_wait(http, shared, "batch=thirdPartyId,a,b\nY,,2", "empty")
    assert values(http, shared, "empty", "Y", third=True) == {"a": "1", "b": "2"}


def test_rows_of_one_batch_override_each_other_too(shared, http) -> None:
    submit_and_wait(http, shared, "batch=pcId,a,b\n100-1,1,\n100-1,,2", "rows")
    assert values(http, shared, "rows", "100-1") == {"b": "2"}


def test_a_pending_value_shadows_the_committed_one_until_dropped(shared, http) -> None:
    submit_and_wait(http, shared, "batch=thirdPartyId,a\nX,old", "shadow")
    mbox(http, shared, "shadow", third="X")
    submit_and_wait(http, shared, "batch=thirdPartyId,a\nX,new", "shadow")
    assert values(http, shared, "shadow", "X", third=True) == {"a": "new"}
    submit_and_wait(http, shared, "batch=thirdPartyId,b\nX,1", "shadow")
    assert values(http, shared, "shadow", "X", third=True) == {"a": "old", "b": "1"}


def test_v2_merge_turns_the_rule_off(http) -> None:
    with running_sandbox(v2_merge=True, processing_delay_s=0.0) as sb:
        submit_and_wait(http, sb, "batch=thirdPartyId,a\nX,1", "merge")
        submit_and_wait(http, sb, "batch=thirdPartyId,b\nX,2", "merge")
        assert values(http, sb, "merge", "X", third=True) == {"a": "1", "b": "2"}
        state = client_state(http, sb, "merge")
        assert (state["v2_overridden_values"], state["v2_pending_profiles"]) == (0, 0)
        assert http.get(f"{sb.url}/_sandbox/state").json()["target"]["v2_merge"] is True
    assert "--v2-merge" in CliRunner().invoke(sandbox_group, ["serve", "--help"]).output


def test_v1_merges_as_before_and_still_creates_nothing(shared, http) -> None:
    detail = submit_and_wait(http, shared, "batch=thirdPartyId,a\nX,1", "v1ok", "v1")
    assert detail["profilesNotFound"] == "1" and values(http, shared, "v1ok", "X", True) is None
    submit_and_wait(http, shared, "batch=thirdPartyId,a\nX,1", "v1ok")  # v2: pending a=1
    submit_and_wait(http, shared, "batch=thirdPartyId,b\nX,2", "v1ok", "v1")
    submit_and_wait(http, shared, "batch=thirdPartyId,c\nX,3", "v1ok", "v1")
    assert values(http, shared, "v1ok", "X", third=True) == {"a": "1", "b": "2", "c": "3"}
    # v1 writes are committed: a later v2 row drops only what v2 left pending.
    submit_and_wait(http, shared, "batch=thirdPartyId,d\nX,4", "v1ok")
    assert values(http, shared, "v1ok", "X", third=True) == {"b": "2", "c": "3", "d": "4"}
    assert client_state(http, shared, "v1ok")["v2_overridden_values"] == 1


# ---- the mbox endpoint


def test_mbox_needs_a_name_and_an_id(shared, http) -> None:
    url = shared.mbox_url("mb")
    no_id = http.get(url, params={"mbox": "home"})
    assert no_id.status_code == 400 and "mbox3rdPartyId or mboxPC" in no_id.json()["message"]
    no_name = http.get(url, params={"mbox3rdPartyId": "X"})
    assert no_name.status_code == 400
    bad = http.get(url, params={"mbox": "home", "mbox3rdPartyId": "a/b"})
    assert bad.status_code == 400


def test_mbox_for_pcid_and_for_an_unknown_profile(shared, http) -> None:
    submit_and_wait(http, shared, "batch=pcId,a\n200-1,1", "mbpc")
    body = mbox(http, shared, "mbpc", pc="200-1").json()
    assert body["mbox"] == "home" and body["content"] == "" and body["pcId"] == "200-1"
    assert body["committed"] == 1
    assert body["profiles"] == [
        {
            "idType": "pcId",
            "id": "200-1",
            "found": True,
            "committed": 1,
            "profileParams": 0,
            "message": "committed 1 pending attribute values",
        }
    ]
    submit_and_wait(http, shared, "batch=pcId,b\n200-1,2", "mbpc")
    assert values(http, shared, "mbpc", "200-1") == {"a": "1", "b": "2"}
    unknown = mbox(http, shared, "mbpc", third="nobody")
    assert unknown.status_code == 200
    assert unknown.json()["profiles"][0]["message"] == "no profile found: nothing to commit"
    assert values(http, shared, "mbpc", "nobody", third=True) is None


def test_mbox_profile_params_are_committed_and_can_create(shared, http) -> None:
    body = mbox(http, shared, "mbpp", third="N", city="Den Haag", empty="").json()
    assert body["profiles"][0]["found"] is False and body["profiles"][0]["profileParams"] == 1
    submit_and_wait(http, shared, "batch=thirdPartyId,tier\nN,gold", "mbpp")
    submit_and_wait(http, shared, "batch=thirdPartyId,tier\nN,", "mbpp")  # drops tier only
    assert values(http, shared, "mbpp", "N", third=True) == {"city": "Den Haag"}
    # v1 never creates, but updates a profile an mbox call created
    detail = submit_and_wait(http, shared, "batch=thirdPartyId,tier\nN,silver", "mbpp", "v1")
    assert detail["successfulUpdates"] == "1"


def test_mbox_auth_metering_and_faults(http) -> None:
    with running_sandbox(
        token="t", calls_per_minute=1, fail_rate=1.0, seed=1, processing_delay_s=0.0
    ) as sb:
        assert mbox(http, sb, "mba", third="X").status_code == 403
        auth = {"Authorization": "Bearer t"}
        url = sb.mbox_url("mba")
        for _ in range(3):  # not metered by calls_per_minute, never faulted
            answer = http.get(url, params={"mbox": "home", "mbox3rdPartyId": "X"}, headers=auth)
            assert answer.status_code == 200
        state = client_state(http, sb, "mba")
        assert state["mbox_calls"] == 3 and state["calls"] == {}
        assert state["faults_injected"] == {}


# ---- persistence


def test_committed_and_pending_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_sandbox(data_dir=data, processing_delay_s=0.0) as sb, httpx.Client() as http:
        submit_and_wait(http, sb, "batch=thirdPartyId,a\nX,1", "per2")
        mbox(http, sb, "per2", third="X")
        submit_and_wait(http, sb, "batch=thirdPartyId,b\nX,2", "per2")
        mbox(http, sb, "per2", pc="300-1", seen="yes")
    with running_sandbox(data_dir=data, processing_delay_s=0.0) as sb, httpx.Client() as http:
        assert values(http, sb, "per2", "X", third=True) == {"a": "1", "b": "2"}
        assert values(http, sb, "per2", "300-1") == {"seen": "yes"}
        assert client_state(http, sb, "per2")["v2_pending_profiles"] == 1
        submit_and_wait(http, sb, "batch=thirdPartyId,c\nX,3", "per2")  # b was still pending
        assert values(http, sb, "per2", "X", third=True) == {"a": "1", "c": "3"}
        mbox(http, sb, "per2", third="X")
    with running_sandbox(data_dir=data, processing_delay_s=0.0) as sb, httpx.Client() as http:
        submit_and_wait(http, sb, "batch=thirdPartyId,d\nX,4", "per2")
        assert values(http, sb, "per2", "X", third=True) == {"a": "1", "c": "3", "d": "4"}


def test_a_data_dir_from_before_the_rule_still_loads(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir()
    with sqlite3.connect(data / "sandbox.sqlite3") as conn:
        conn.execute(
            "create table target_profiles (client text not null, id_column text not null,"
            " id text not null, attrs text not null, primary key (client, id_column, id))"
        )
        conn.execute(
            "insert into target_profiles values ('old', 'thirdPartyId', 'X', ?)",
            ['{"values": {"a": "1"}, "ts": 1800000000.0, "older": null}'],
        )
    conn.close()
    with running_sandbox(data_dir=data, processing_delay_s=0.0) as sb, httpx.Client() as http:
        assert values(http, sb, "old", "X", third=True) == {"a": "1"}  # committed
        submit_and_wait(http, sb, "batch=thirdPartyId,b\nX,2", "old")
        assert values(http, sb, "old", "X", third=True) == {"a": "1", "b": "2"}
    with running_sandbox(data_dir=data, processing_delay_s=0.0) as sb, httpx.Client() as http:
        assert values(http, sb, "old", "X", third=True) == {"a": "1", "b": "2"}
        assert client_state(http, sb, "old")["v2_pending_profiles"] == 1
