"""What the CKAN tests share: the real ckanapi client with a government analyst's token, and the native answers."""

import ckanapi
import httpx
import pytest


@pytest.fixture(scope="module")
def analyst_key(analyst) -> str:
    """The analyst's token as a CKAN client takes it (its `apikey`)."""
    return analyst["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def ckan(api, analyst_key):
    """ckanapi with the analyst's token as its API key."""
    with ckanapi.RemoteCKAN(api, apikey=analyst_key) as remote:
        yield remote


@pytest.fixture(scope="module")
def described(api, analyst) -> dict:
    """Every dataset's native description (/api/datasets/{id}) as the analyst sees it, by id."""
    ids = [d["id"] for d in httpx.get(f"{api}/api/datasets", headers=analyst).json()["datasets"]]
    return {i: httpx.get(f"{api}/api/datasets/{i}", headers=analyst).json() for i in ids}
