"""Live Copernica REST behaviour, rule by rule: the request, the status and the body it gets.

Written from the public specification of the live API that rmuit/copernica-api keeps as a
test suite against the real service (``tests/ApiBehaviorTest.php``, its "Test" database:
Email email, LastName text, Birthdate empty_date, ANumber integer with default -1, one
collection), from Copernica's REST docs (``GET database/{id}/fields``) and from the issue's
list. Never from the sandbox's own output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from connector.sandbox.testing import SandboxHandle, running_sandbox

SCHEMA = {
    "Test": {
        "fields": {
            "Email": {"type": "email"},
            "LastName": {"type": "text"},
            "Birthdate": {"type": "empty_date"},
            "ANumber": {"type": "integer", "value": "-1"},
        },
        "collections": {
            "Test": {
                "fields": {
                    "Score": {"type": "integer", "value": "-1"},
                    "ActionTime": {"type": "empty_datetime"},
                }
            }
        },
    }
}
PROFILE = {
    "wonky": 3,
    "Email": "rm@wyz.biz",
    "email": "",
    "laSTNAme": "Muiii",
    "LaSTNAme": "Muit",
    "Birthdate": "1974-04-27",
}
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def err(message: str) -> dict[str, dict[str, str]]:
    return {"error": {"message": message}}


@pytest.fixture
def live() -> Iterator[tuple[SandboxHandle, httpx.Client]]:
    with (
        running_sandbox(copernica_schema=SCHEMA, copernica_autocreate=False) as sb,
        httpx.Client(base_url=f"{sb.url}/v3", timeout=30) as client,
    ):
        yield sb, client


def post(client: httpx.Client, path: str, body: object = None) -> httpx.Response:
    return client.post(path, json=body) if body is not None else client.post(path)


@pytest.fixture
def filled(live: tuple[SandboxHandle, httpx.Client]) -> tuple[httpx.Client, list[str]]:
    """The four profiles of the spec's CRUD test: two from the same data (one via an extra
    path), one empty, one with ``FIELDS`` (ignored: the key is case-sensitive)."""
    _, client = live
    data = {"tonky": {"nothing": "not"}, "secret": "secret!", "fields": PROFILE}
    answers = [
        post(client, "/database/1/profiles", data),
        post(client, "/database/tEst/profiles/99", data),
        post(client, "/database/1/profiles//bogus/"),
        post(client, "/database/tEst/profiles", {"FIELDS": PROFILE}),
    ]
    assert [a.status_code for a in answers] == [201] * 4
    return client, [a.headers["X-Created"] for a in answers]


# -- errors: HTTP 400 with {"error": {"message": ...}} ----------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/PROFILE/1", "Invalid method"),  # paths are case-sensitive
        ("GET", "/database", "Invalid request, element 2 is missing in 'directory' path"),
        ("PUT", "/database/", "Invalid request, element 2 is missing in 'directory' path"),
        ("GET", "/profile//", "Invalid request, element 2 is missing in 'directory' path"),
        ("GET", "/database/99984", "No database with supplied ID"),
        ("GET", "/database/-1", "No database with supplied ID"),
        ("GET", "/database/0/profiles", "No database with supplied ID"),
        ("POST", "/database//profiles", "No database with supplied ID"),
        ("PUT", "/database/bogus/path", "No database with supplied ID"),
        ("GET", "/profile/99984", "No entity with supplied ID"),
        ("PUT", "/profile/-1/fields", "No entity with supplied ID"),
        ("DELETE", "/profile//fields", "No entity with supplied ID"),
        ("GET", "/collection/99984", "No collection with given ID"),
        ("GET", "/subprofile/99984/fields", "No subprofile with supplied ID"),
        ("GET", "/database/1/copy", "Invalid method"),  # known id, no such endpoint
        ("GET", "/database/1/0", "Invalid method"),
        ("GET", "/database/1//0", "Invalid method"),
        ("DELETE", "/database/1/profiles", "Invalid method"),
        ("DELETE", "/database/1/fields", "Invalid method"),
    ],
)
def test_error_messages(live, method: str, path: str, message: str) -> None:
    _, client = live
    response = client.request(method, path)
    assert (response.status_code, response.json()) == (400, err(message))


def test_profile_paths_check_the_id_then_the_rest(filled) -> None:
    client, ids = filled
    for method, tail in [("GET", "datarequest"), ("PUT", "files"), ("DELETE", "fields")]:
        response = client.request(method, f"/profile/{ids[0]}/{tail}")
        assert (response.status_code, response.json()) == (400, err("Invalid method"))
    short = client.get(f"/profile/{ids[0]}/subprofiles")
    assert short.json() == err("Invalid request, element 4 is missing in 'directory' path")


def test_invalid_token_is_checked_before_routing() -> None:
    with running_sandbox(token="tok", copernica_autocreate=False) as sb:
        for path in ("/v3/database/99984/profiles", "/v3/PROFILE/1", "/v2/database"):
            response = httpx.get(sb.url + path, params={"access_token": "bad"})
            assert (response.status_code, response.json()) == (400, err("Invalid access token"))


@pytest.mark.parametrize("fields", [True, 0, "blah"])
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_non_object_fields_is_invalid_data(live, method: str, fields: object) -> None:
    _, client = live
    response = client.request(
        method,
        "/database/1/profiles/bogus",
        params={"fields[]": "LastName==x"},
        json={"fields": fields},
    )
    assert (response.status_code, response.json()) == (400, err("Invalid data provided"))


# -- field names, defaults, bodies ------------------------------------------------------------


def test_fields_are_case_insensitive_last_duplicate_wins_unknown_ignored(filled) -> None:
    client, ids = filled
    listing = client.get("/database/1/profiles").json()
    assert (listing["start"], listing["limit"], listing["count"], listing["total"]) == (
        0,
        100,
        4,
        4,
    )
    assert list(listing) == ["start", "limit", "count", "data", "total"]
    full = {"Email": "", "LastName": "Muit", "Birthdate": "1974-04-27", "ANumber": "-1"}
    empty = {"Email": "", "LastName": "", "Birthdate": "", "ANumber": "-1"}
    assert [p["fields"] for p in listing["data"]] == [full, full, empty, empty]
    assert [p["ID"] for p in listing["data"]] == ids
    for profile in listing["data"]:
        assert profile["database"] == "1" and profile["removed"] is False
        assert re.fullmatch(r"[0-9a-f]{28}", profile["secret"])
        assert STAMP.match(profile["created"]) and STAMP.match(profile["modified"])
    assert len({p["secret"] for p in listing["data"]}) == 4


def test_empty_json_array_or_object_creates_an_empty_profile(live) -> None:
    _, client = live
    for body in (b"[]", b"{}"):
        response = client.post(
            "/database/1/profiles", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 201
        created = client.get(f"/profile/{response.headers['X-Created']}/fields").json()
        assert created == {"Email": "", "LastName": "", "Birthdate": "", "ANumber": "-1"}


def test_created_and_modified_are_amsterdam_time() -> None:
    moment = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC = 23:13:20 in Amsterdam (CET)
    with running_sandbox(copernica_schema=SCHEMA, clock=lambda: moment) as sb:
        pid = httpx.post(f"{sb.url}/v3/database/Test/profiles", json={}).headers["X-Created"]
        profile = httpx.get(f"{sb.url}/v3/profile/{pid}").json()
        assert profile["created"] == profile["modified"] == "2023-11-14 23:13:20"


def test_get_database_fields(live) -> None:
    _, client = live
    response = client.get("/database/test/fields")
    assert response.status_code == 200
    listed = response.json()
    assert (listed["start"], listed["count"], listed["total"]) == (0, 4, 4)
    assert [(f["name"], f["type"], f["value"]) for f in listed["data"]] == [
        ("Email", "email", ""),
        ("LastName", "text", ""),
        ("Birthdate", "empty_date", ""),
        ("ANumber", "integer", "-1"),
    ]
    assert {"ID", "displayed", "ordered", "length", "textlines", "hidden", "index"} <= set(
        listed["data"][0]
    )


# -- listings ---------------------------------------------------------------------------------


def test_listing_ignores_extra_path_parts_and_unknown_or_miscased_params(filled) -> None:
    client, _ = filled
    everything = client.get("/database/1/profiles").json()
    for path, params in [
        ("/database/1/profiles/1", {"fields": "false", "bogus": "345", "total": "TRue"}),
        ("/database/1/profiles/bogus/path", {"fields": "nothing"}),
        ("/database/1/profiles/", {"FIELds[]": "LastName==Muit", "LIMIT": "1", "starT": "2"}),
        ("/database/1/profiles", {"fields[]": "LastName ==Muit"}),  # "LastName " is unknown
    ]:
        assert client.get(path, params=params).json() == everything


def test_listing_conditions(filled) -> None:
    client, ids = filled
    spaced = client.get(
        "/database/1/profiles", params={"fields[]": "LastName== Muit", "total": "thisisfalse"}
    ).json()
    assert spaced == {"start": 0, "limit": 100, "count": 0, "data": []}
    trimmed = client.get(
        "/database/1/profiles",
        params=[
            ("fields[]", " LASTNAME==mUIT "),
            ("fields[]", "ANumber>=-1"),
            ("limit", "1"),
            ("order", "descending"),
        ],
    ).json()
    assert (trimmed["count"], trimmed["total"], trimmed["data"][0]["ID"]) == (1, 2, ids[1])


def test_negative_start_or_limit_echoed_with_no_data(filled) -> None:
    client, _ = filled
    for params, start, limit in [({"start": -2}, -2, 100), ({"limit": -2}, 0, -2)]:
        got = client.get("/database/1/profiles", params=params).json()
        assert got == {"start": start, "limit": limit, "count": 0, "data": [], "total": 4}


def test_single_profile_reads(filled) -> None:
    client, ids = filled
    listed = client.get("/database/1/profiles").json()["data"][0]
    assert client.get(f"/profile/{ids[0]}").json() == listed
    assert client.get(f"/profile/{ids[0]}/fields").json() == listed["fields"]
    assert client.get(f"/profile/{ids[0]}/fields/bogus/path").json() == listed["fields"]


# -- updates and removal ----------------------------------------------------------------------


def test_put_profile_ignores_non_object_fields_and_sets_secret(filled) -> None:
    client, ids = filled
    before = client.get(f"/profile/{ids[2]}").json()
    assert (
        client.put(f"/profile/{ids[2]}/", json={"fields": "bogus", "secret": "s"}).status_code < 300
    )
    after = client.get(f"/profile/{ids[2]}").json()
    assert after == {**before, "secret": "s"}  # modified unchanged
    client.put(f"/profile/{ids[2]}", json={"fields": {"ANumber": -1.9, "notafield": 100}})
    assert client.get(f"/profile/{ids[2]}").json() == after  # -1.9 is -1: nothing changed


def test_emptying_fields(filled) -> None:
    client, ids = filled
    body = {"fields": {"lastName": "ignored", "lastNAME": "", "ANumber": None}}
    assert client.put(f"/profile/{ids[0]}", json=body).status_code < 300
    fields = client.get(f"/profile/{ids[0]}/fields").json()
    assert (fields["LastName"], fields["ANumber"]) == ("", "0")  # 0, not the default
    found = client.get(
        "/database/1/profiles", params=[("fields[]", "LASTNAME=="), ("fields[]", "ANumber==")]
    ).json()
    assert [p["ID"] for p in found["data"]] == [ids[0]]


def test_delete_profile(filled) -> None:
    client, ids = filled
    assert client.delete(f"/profile/{ids[2]}").status_code < 300
    removed = client.get(f"/profile/{ids[2]}").json()
    assert STAMP.match(removed["removed"])
    assert set(removed["fields"].values()) == {""}
    assert ids[2] not in [p["ID"] for p in client.get("/database/1/profiles").json()["data"]]
    for path in (f"/profile/{ids[2]}", f"/profile/{ids[2]}/bogus"):
        again = client.delete(path)
        assert (again.status_code, again.json()) == (
            400,
            err("This profile has already been removed"),
        )


def test_bulk_put_without_a_known_condition_updates_every_profile(filled) -> None:
    client, _ = filled
    for params in ({}, {"fields[]": "nooperator"}, {"fields[]": "notafield==1"}):
        client.put("/database/1/profiles", params=params, json={"fields": {"ANumber": 7}})
    listed = client.get("/database/1/profiles").json()["data"]
    assert {p["fields"]["ANumber"] for p in listed} == {"7"}


def test_bulk_put_with_create(live) -> None:
    _, client = live
    selector = {"fields[]": "Email==a@x", "create": "1"}
    created = client.put("/database/1/profiles", params=selector, json={"fields": {"email": "a@x"}})
    assert created.status_code == 201 and created.headers["X-Created"]
    updated = client.put(
        "/database/1/profiles", params=selector, json={"fields": {"LastName": "A"}}
    )
    assert updated.status_code == 204
    # text compares case-insensitively: A@X selects the same profile
    client.put(
        "/database/1/profiles", params={"fields[]": "Email==A@X"}, json={"fields": {"ANumber": 2}}
    )
    listed = client.get("/database/1/profiles").json()["data"]
    assert [p["fields"] for p in listed] == [
        {"Email": "a@x", "LastName": "A", "Birthdate": "", "ANumber": "2"}
    ]


# -- schema and reset through the admin endpoints ---------------------------------------------


def test_admin_schema_and_reset(live) -> None:
    sb, client = live
    declared = httpx.post(
        f"{sb.url}/_sandbox/copernica/schema",
        json={"Other": {"fields": {"FirstName": "text", "Age": {"type": "integer"}}}},
    )
    assert declared.status_code == 200 and set(declared.json()) == {"Test", "Other"}
    assert (
        client.post("/database/Other/profiles", json={"fields": {"age": "41 years"}}).status_code
        == 201
    )
    assert client.get("/database/other/profiles").json()["data"][0]["fields"] == {
        "FirstName": "",
        "Age": "41",
    }
    bad = httpx.post(f"{sb.url}/_sandbox/copernica/schema", json={"X": {"fields": {"a": "nope"}}})
    assert bad.status_code == 400
    assert httpx.post(f"{sb.url}/_sandbox/copernica/reset").status_code == 200
    assert client.get("/database/Other/profiles").json() == err("No database with supplied ID")
    assert client.get("/database/Test/profiles").json()["total"] == 0


def test_serve_reads_a_schema_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from connector.sandbox.cli import _read_schema, sandbox_group

    good = tmp_path / "schema.json"
    good.write_text('{"Shop": {"fields": {"Email": "email", "N": {"type": "integer"}}}}')
    assert _read_schema(good) == {"Shop": {"fields": {"Email": "email", "N": {"type": "integer"}}}}
    bad = tmp_path / "bad.json"
    bad.write_text('{"Shop": {"fields": {"Email": "mail"}}}')
    result = CliRunner().invoke(sandbox_group, ["serve", "--copernica-schema", str(bad)])
    assert result.exit_code == 2 and "unknown type 'mail'" in result.output
