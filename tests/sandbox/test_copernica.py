"""Copernica over HTTP: the fields[] selector (every operator, wildcards), bodies, codes, auth."""

from __future__ import annotations

import httpx
import pytest

from connector.sandbox.testing import running_sandbox

SHOP = {"shop": ["email", "name", "points", "city"]}
PEOPLE = [
    ("Anna", "9", "Amsterdam"),
    ("Bert", "10", "Rotterdam"),
    ("Cees", "100", "Den Haag"),
    ("Dirk", "", "Amstelveen"),
]


@pytest.fixture(scope="module")
def cop():
    with (
        running_sandbox(copernica_databases=SHOP) as sb,
        httpx.Client(base_url=f"{sb.url}/v3", timeout=30) as client,
    ):
        for name, points, city in PEOPLE:
            fields = {"email": f"{name.lower()}@x.nl", "name": name, "points": points, "city": city}
            response = client.post("/database/shop/profiles", json={"fields": fields})
            assert response.status_code == 201 and response.headers["X-Created"].isdigit()
        yield sb, client


def names(client: httpx.Client, *selectors: str, db: str = "shop") -> list[str]:
    response = client.get(f"/database/{db}/profiles", params=[("fields[]", s) for s in selectors])
    assert response.status_code == 200, response.text
    return [p["fields"].get("name") for p in response.json()["data"]]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("name==Anna", ["Anna"]),
        ("name!=Anna", ["Bert", "Cees", "Dirk"]),
        ("name<>Anna", ["Bert", "Cees", "Dirk"]),
        ("points<10", ["Anna", "Dirk"]),  # numeric: "9" < "10"; empty sorts first
        ("points>10", ["Cees"]),
        ("points<=10", ["Anna", "Bert", "Dirk"]),
        ("points>=10", ["Bert", "Cees"]),
        ("city=~Am%", ["Anna", "Dirk"]),
        ("city=~%dam", ["Anna", "Bert"]),
        ("city=~amsterda_", ["Anna"]),  # like is case-insensitive; _ is one character
        ("city=~Amsterdam_", []),
        ("city!~Am%", ["Bert", "Cees"]),
        ("name=~____", ["Anna", "Bert", "Cees", "Dirk"]),
        ("email==anna@x.nl", ["Anna"]),
        ("points==", ["Dirk"]),
        ("unknown==", ["Anna", "Bert", "Cees", "Dirk"]),
    ],
)
def test_selector_operators(cop, selector: str, expected: list[str]) -> None:
    _, client = cop
    assert names(client, selector) == expected


def test_selectors_combine_with_and(cop) -> None:
    _, client = cop
    assert names(client, "city=~Am%", "points>=9") == ["Anna"]


def test_special_field_id(cop) -> None:
    _, client = cop
    first = client.get("/database/shop/profiles").json()["data"][0]
    assert names(client, f"id=={first['ID']}") == [first["fields"]["name"]]


def test_get_paging_total_and_limit_cap(cop) -> None:
    _, client = cop
    page = client.get(
        "/database/shop/profiles", params={"start": 1, "limit": 2, "total": "true"}
    ).json()
    assert (page["start"], page["limit"], page["count"], page["total"]) == (1, 2, 2, 4)
    assert [p["fields"]["name"] for p in page["data"]] == ["Bert", "Cees"]
    assert {"ID", "fields"} <= set(page["data"][0])
    capped = client.get("/database/shop/profiles", params={"limit": 5000}).json()
    assert capped["limit"] == 1000 and capped["total"] == 4  # live: total unless turned off
    no_total = client.get("/database/shop/profiles", params={"total": "false"}).json()
    assert "total" not in no_total
    # live reads limit like PHP's intval: not a number is 0, not an error
    assert client.get("/database/shop/profiles", params={"limit": "x"}).json()["count"] == 0


def test_put_updates_every_match_and_ignores_unknown_fields() -> None:
    with (
        running_sandbox(copernica_databases={"crm": ["email", "tier"]}) as sb,
        httpx.Client(base_url=sb.url, timeout=30) as client,
    ):
        for email in ("a@x", "b@x", "c@y"):
            response = client.post("/v3/database/crm/profiles", json={"fields": {"email": email}})
            assert response.status_code == 201
        response = client.put(
            "/v3/database/crm/profiles",
            params={"fields[]": "email=~%@x"},
            json={"fields": {"tier": "gold", "bogus": "1"}},
        )
        assert response.status_code == 204
        data = client.get("/v3/database/crm/profiles").json()["data"]
        assert [p["fields"] for p in data] == [  # live lists every field of the database
            {"email": "a@x", "tier": "gold"},
            {"email": "b@x", "tier": "gold"},
            {"email": "c@y", "tier": ""},
        ]


def test_put_create_flag_and_no_match() -> None:
    with running_sandbox() as sb, httpx.Client(base_url=sb.url, timeout=30) as client:
        url = "/v4/database/newdb/profiles"
        nothing = client.put(
            url, params={"fields[]": "customerid==4567"}, json={"fields": {"firstname": "John"}}
        )
        assert nothing.status_code == 204
        assert client.get(url).json()["count"] == 0
        created = client.put(
            url,
            params={"fields[]": "customerid==4567", "create": 1, "async": 1},
            json={"fields": {"customerid": "4567", "firstname": "John", "lastname": "Doe"}},
        )
        assert created.status_code == 201
        new_id = created.headers["X-Created"]
        updated = client.put(
            url,
            params={"fields[]": "customerid==4567", "create": 1},
            json={"fields": {"lastname": "Roe"}},
        )
        assert updated.status_code == 204
        data = client.get(url).json()["data"]
        assert len(data) == 1 and data[0]["ID"] == new_id
        assert data[0]["fields"] == {"customerid": "4567", "firstname": "John", "lastname": "Roe"}
        # by numeric id too, and without a version prefix
        db_id = data[0]["database"]
        assert client.get(f"/database/{db_id}/profiles").json()["count"] == 1
        missing = client.get("/v3/database/999/profiles")
        assert missing.status_code == 400
        assert missing.json() == {"error": {"message": "No database with supplied ID"}}


def test_form_bodies_and_profile_fields() -> None:
    with running_sandbox() as sb, httpx.Client(base_url=f"{sb.url}/v2", timeout=30) as client:
        created = client.post(
            "/database/forms/profiles", data={"fields[email]": "f@x", "fields[name]": "F G"}
        )
        pid = created.headers["X-Created"]
        assert client.get(f"/profile/{pid}/fields").json() == {"email": "f@x", "name": "F G"}
        put = client.put(
            "/database/forms/profiles",
            params={"fields[]": "email==f@x"},
            content="fields[name]=H+%26+I",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert put.status_code == 204
        assert (
            client.put(f"/profile/{pid}/fields", json={"city": "Utrecht", "n": 3}).status_code
            == 204
        )
        assert client.get(f"/profile/{pid}/fields").json() == {
            "email": "f@x",
            "name": "H & I",
            "city": "Utrecht",
            "n": "3",
        }
        assert client.put("/profile/999/fields", json={"a": 1}).status_code == 400


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({"fields[]": "a==1"}, "not json", "Invalid data provided"),
        ({"fields[]": "a==1"}, {"fields": True}, "Invalid data provided"),
        ({"fields[]": "a==1"}, {"fields": "blah"}, "Invalid data provided"),
    ],
)
def test_errors_are_400_with_message(params, body, message) -> None:
    with running_sandbox() as sb, httpx.Client(base_url=f"{sb.url}/v3", timeout=30) as client:
        kwargs = (
            {"content": body, "headers": {"content-type": "application/json"}}
            if isinstance(body, str)
            else {"json": body}
        )
        response = client.put("/database/e/profiles", params=params, **kwargs)
        assert response.status_code == 400
        assert response.json() == {"error": {"message": message}}


def test_unknown_database_name_refused_without_autocreate() -> None:
    with running_sandbox(copernica_autocreate=False, copernica_databases={"known": None}) as sb:
        assert httpx.get(f"{sb.url}/v3/database/known/profiles").status_code == 200
        assert httpx.get(f"{sb.url}/v3/database/other/profiles").status_code == 400


def test_copernica_auth_query_token_v1_v3_bearer_v4() -> None:
    with running_sandbox(token="tok") as sb, httpx.Client(base_url=sb.url, timeout=30) as client:
        for prefix in ("/v1", "/v2", "/v3", ""):
            assert client.get(f"{prefix}/database/a/profiles").status_code == 400
            denied = client.get(f"{prefix}/database/a/profiles", params={"access_token": "bad"})
            assert denied.json() == {"error": {"message": "Invalid access token"}}
            assert (
                client.get(
                    f"{prefix}/database/a/profiles", params={"access_token": "tok"}
                ).status_code
                == 200
            )
        assert (
            client.get("/v4/database/a/profiles", params={"access_token": "tok"}).status_code == 400
        )
        ok = client.get("/v4/database/a/profiles", headers={"Authorization": "Bearer tok"})
        assert ok.status_code == 200
