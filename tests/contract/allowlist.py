"""The reviewed allow-list of the contract tests.

See docs/local-server.md, "How faithfulness is checked".

A new deviation fails CI unless it is recorded here with a reason. Entries:

* ``TEST_ENTRIES``: keyed by ``<file>::<test name with parameters>`` under ``tests/contract/``.
  ``BUG``: a real server bug; the test is marked ``xfail(strict=True)``, so it stays visible and
  CI turns red as soon as the bug is fixed (then delete the entry). ``EXCLUSION``: the test
  cannot run meaningfully (a documented exclusion); it is skipped with the reason.
* ``PARITY_BUGS``: server bugs seen as one kind of recording-parity difference; each generates
  a ``test_parity_bug[<id>]`` BUG entry (see ``ParityBug``).
* ``TOLERANCES``: narrow, named rules that the checks consult (``tolerated(name)``); removing
  one switches the rule off. Kinds: ``DEVIATION`` (the local server differs from the real API,
  accepted), ``SPEC_GAP`` (the official spec is wrong or silent where the real API or
  docs/local-server.md is clear), ``HARNESS`` (how generated cases are steered, and why).

``test_allowlist.py`` checks every entry has a reason, BUG entries pin a test, every tolerance
is consulted by some check, and no entry names a test that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["BUG", "EXCLUSION", "DEVIATION", "SPEC_GAP", "HARNESS"]


@dataclass
class Entry:
    """One reviewed deviation: ``id`` (stable name), ``kind``, ``reason`` (why it is accepted)."""

    id: str
    kind: Kind
    reason: str
    matched: bool = False


def _entries(*items: tuple[str, Entry]) -> dict[str, Entry]:
    return dict(items)


# ------------------------------------------------------------------ whole tests (xfail / skip)
#: Fixed bugs that these tests found (kept as plain regression tests; listed for the record):
#: prefer-wait-61-99, download-content-type, url-fields-echo-non-uris, models-create-500
#: (fixed in 81972d5 / earlier), and the parity bugs stream-field-echo (d77634b),
#: model-created-at, search-extra-fields, example-stream-url (81972d5).
#:
#: Do not put BUG entries on Schemathesis-parametrized items (test_operation_conforms[...],
#: test_operation_rejects_invalid_requests[...]): when such an xfail(strict) item passes,
#: Schemathesis 4.32's pytest plugin crashes the session (INTERNALERROR in
#: pytest_runtest_makereport) instead of reporting XPASS. Pin the bug with a focused plain test
#: and steer the fuzzed operation around it with a tolerance that names the bug.
TEST_ENTRIES: dict[str, Entry] = _entries()


# ------------------------------------------------------------------ known bugs in recording parity
@dataclass
class ParityBug:
    """A server bug seen as one kind of parity difference.

    ``problem``: a regex over the difference lines of ``test_recording_parity.differences``;
    matching lines are set aside in the per-exchange tests (which keep checking everything
    else), and ``test_parity_bug[<id>]`` replays ``example`` (``recording.yaml#index``)
    expecting no such line: it is xfail(strict) while the bug lasts.
    """

    entry: Entry
    problem: str
    example: str
    uri: str = ""


PARITY_BUGS: dict[str, ParityBug] = {}

for _id, _bug in PARITY_BUGS.items():
    TEST_ENTRIES[f"test_recording_parity.py::test_parity_bug[{_id}]"] = _bug.entry

# ------------------------------------------------------------------ narrow tolerances in checks
TOLERANCES: dict[str, Entry] = {
    # -- Schemathesis harness: how generated cases are steered (test_schemathesis.fix_case).
    "no-random-webhooks": Entry(
        "no-random-webhooks",
        "HARNESS",
        "Generated `webhook` URLs are dropped from create bodies: the server would POST to "
        "random hosts (CI has no network, and deliveries retry in the background), and it "
        "rejects non-URL strings with 422 (the server checks the webhook URL before the input), which the spec, "
        "typing `webhook` as a plain string, does not document. Webhooks are covered by "
        "tests/server/test_webhooks.py.",
    ),
    "cancel-after-valid": Entry(
        "cancel-after-valid",
        "HARNESS",
        "The spec types `Cancel-After` as a bare string with no pattern; a random string is "
        "a client error (the server answers 4xx, which the spec does not document), so "
        "non-durations are replaced by `60s`.",
    ),
    "files-body-present": Entry(
        "files-body-present",
        "SPEC_GAP",
        "files.create's requestBody is not marked required in the spec, so the generator may "
        "omit it or its required `content` part; the server rightly answers 422, which the "
        "spec does not document. Uploads always get a `content` part.",
    ),
    "undeclared-body-properties": Entry(
        "undeclared-body-properties",
        "DEVIATION",
        "Request bodies whose spec schema allows extra properties (no additionalProperties: "
        "false: models.create, models.update, deployments.create/update, trainings.create) "
        "get only the declared ones. The server rejects unknown body keys with 422 "
        "'- Additional property X is not allowed', the real API's body-shape error (seen for predictions.create, whose schema does forbid extras). "
        "Whether the real API is as strict on these routes is unverified; confirm before "
        "release, then make this a BUG or keep it.",
    ),
    # -- Recording parity (test_recording_parity.differences / shape_diff).
    "ratelimit-on-every-reply": Entry(
        "ratelimit-on-every-reply",
        "DEVIATION",
        "The local server sends ratelimit-remaining/ratelimit-reset on every /v1 reply, as the real "
        "API does on the replies recorded with them; the 2024 Files API recordings and the 401 "
        "recording have none. Extra headers only; the reverse (recorded but missing locally) "
        "still fails.",
    ),
    "no-content-type-on-204": Entry(
        "no-content-type-on-204",
        "DEVIATION",
        "DELETE /v1/files/{id} 204: the real API labels the empty body text/plain; the local "
        "server sends no Content-Type. There is no body either way.",
    ),
    "dropped-from-api": Entry(
        "dropped-from-api",
        "DEVIATION",
        "A key the 2023 recordings carry with a null value and that the current official spec "
        "no longer declares there (prediction `webhook_completed`, default_example `webhook`, "
        "`webhook_completed`) may be absent locally: the server follows the current API.",
    ),
    "model-specific-metrics": Entry(
        "model-specific-metrics",
        "DEVIATION",
        "`metrics` keys other than predict_time/total_time (input_token_count, "
        "output_token_count, tokens_per_second...) come from language models; the local demo "
        "models do not report them.",
    ),
    "default-example-is-a-prediction": Entry(
        "default-example-is-a-prediction",
        "SPEC_GAP",
        "The spec types a model's default_example as a bare object; it is a prediction, so "
        "keys the local server adds there are checked against the spec's prediction schema "
        "(source, data_removed, urls.web...).",
    ),
    "training-unfinished-nulls": Entry(
        "training-unfinished-nulls",
        "SPEC_GAP",
        "The spec types a training's `output` (object), `completed_at`, `started_at` and "
        "`logs` (strings) as non-nullable, but the real API returns null for them while the "
        "training is unfinished (trainings-get.yaml: output, completed_at and logs null; "
        "trainings-cancel.yaml). The in-memory spec used by Schemathesis allows null there.",
    ),
    "download-signature-is-auth": Entry(
        "download-signature-is-auth",
        "SPEC_GAP",
        "files.download inherits the spec's global bearerAuth requirement, but the signed URL "
        "is the credential (a valid signature is enough, a bearer "
        'token is optional: docs/local-server.md, "Files"), which is what signed URLs are for. Schemathesis\'s ignored_auth '
        "check (ST401) is not run on that operation; a bad signature still gives 404 "
        "(tests/server/test_files.py).",
    ),
    "url-fields-are-urls": Entry(
        "url-fields-are-urls",
        "SPEC_GAP",
        "models.create/models.update: the spec's request schema types cover_image_url, "
        "github_url, license_url, paper_url and weights_url as plain strings, while the model "
        "response schema requires format: uri. The server validates them as URIs on input "
        "(422 '- license_url: Does not match format 'uri''), so a spec-positive value like '' "
        "gets an undocumented 422. Fuzzed bodies get https URLs in these fields; "
        "test_models_create_never_echoes_non_uri_url_fields checks the server's handling of ''.",
    ),
}

_used: set[str] = set()


def tolerated(name: str) -> bool:
    """Whether tolerance ``name`` is on the allow-list (records the use for ``test_allowlist``)."""
    if name not in TOLERANCES:
        return False
    _used.add(name)
    return True


def used_tolerances() -> set[str]:
    """The tolerances consulted so far in this test session."""
    return set(_used)
