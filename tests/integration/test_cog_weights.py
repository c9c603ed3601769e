"""Trained Cog versions get their weights as the platform gives them: an http(s) URL.

The local server serves each trained version's weights and starts its runtime with
``COG_WEIGHTS`` set to that URL; Cog's runtime hands it to ``setup(weights)`` as it is (a
string). Two fixtures train through the server and then run: one whose setup fetches the
weights over HTTP (``requests.get``), one that opens them as a file (Cog's ``Path``). Over
TLS the runtime trusts the server's CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("cog")

import replicate
from replicate.local.server import LocalServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODELS = {
    "acme/http-weights": FIXTURES / "cog_weights_http",
    "acme/path-weights": FIXTURES / "cog_weights_path",
}


@pytest.fixture(scope="module", params=[False, True], ids=["http", "tls"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[LocalServer, replicate.Client]]:
    import ssl

    tls = bool(request.param)
    with LocalServer(cog=MODELS, demo_models=False, tls=tls) as server:
        verify: dict[str, object] = {}
        if server.ca_file is not None:
            verify["verify"] = ssl.create_default_context(cafile=server.ca_file)
        client = replicate.Client(
            api_token=server.api_token, base_url=server.base_url, poll_interval=0.05, **verify
        )
        yield server, client


@pytest.mark.parametrize("model", sorted(MODELS))
def test_trained_version_gets_its_weights_as_a_url(
    served: tuple[LocalServer, replicate.Client], model: str
) -> None:
    server, client = served
    scheme = server.base_url.split(":", 1)[0]
    destination = f"{model.split('/')[1]}-{scheme}"
    client.models.create(owner="local", name=destination, visibility="private", hardware="cpu")
    base = client.models.get(model).latest_version
    assert base is not None
    training = client.trainings.create(
        model=model,
        version=base.id,
        input={"greeting": "howdy"},
        destination=f"local/{destination}",
    )
    training.wait()
    assert training.status == "succeeded", (training.error, training.logs)
    version = training.output["version"]
    # The base version has no weights; the trained one fetched them from the server's URL,
    # and setup() got that URL as a string.
    assert client.run(f"{model}:{base.id}", input={"text": "bob"}) == "hello bob (no weights)"
    assert client.run(version, input={"text": "bob"}) == f"howdy bob (str {scheme})"


def test_the_weights_url_is_served_and_unguessable(
    served: tuple[LocalServer, replicate.Client],
) -> None:
    import ssl

    from replicate.local.catalogue import catalogue_of

    server, _ = served
    core = server.core
    assert core is not None
    rows = core.store.query("SELECT version_id, weights_name FROM trained_versions")
    assert len(rows) == len(MODELS), "runs after the trainings above"
    verify = ssl.create_default_context(cafile=server.ca_file) if server.ca_file else True
    for row in rows:
        file = catalogue_of(core).weights_dir() / row["version_id"] / row["weights_name"]
        env = core.cog_weights_env(str(file))  # what a trained version's runtime gets
        url = env["COG_WEIGHTS"]
        assert url.startswith(server.base_url + "/weights/" + row["version_id"] + "-")
        if server.ca_file:  # the runtime trusts the server's CA
            assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == server.ca_file
        assert httpx.get(url, verify=verify).text == "howdy"  # no token needed
        forged = url.replace(row["version_id"] + "-", row["version_id"] + "-0", 1)
        assert httpx.get(forged, verify=verify).status_code == 404
    assert core.cog_weights_env("/not/a/trained/version/weights") == {}
