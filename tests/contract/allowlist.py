"""The reviewed allow-list of the contract tests (design: local-server.md section 13, "CI gate").

A new deviation fails CI unless it is recorded here with a reason. Two kinds of entries:

* ``TEST_ENTRIES``: keyed by the test id under ``tests/contract/`` (``file.py::test[param]``).
  ``BUG``: a real server bug; the test is marked ``xfail(strict=True)``, so it stays visible and
  CI turns red as soon as the bug is fixed (then delete the entry). ``EXCLUSION``: the test
  cannot run meaningfully (a documented exclusion of the design); it is skipped with the reason.
* ``TOLERANCES``: named, accepted local deviations that the checks themselves consult
  (``tolerated(name)``), e.g. "URLs point at the local origin". Each is a narrow rule, never a
  blanket "ignore this test".

Every entry must have a reason; ``test_allowlist.py`` checks that each one is still used.
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
TEST_ENTRIES: dict[str, Entry] = _entries(
    (
        "test_schemathesis.py::test_bug_prefer_wait_allowed_by_spec_pattern",
        Entry(
            "prefer-wait-61-99",
            "BUG",
            "BUG: POST /v1/predictions (and the model/deployment create routes) with "
            "`Prefer: wait=78` answers 422 'Invalid Prefer header'. The spec's pattern "
            "^wait(=([1-9]|[1-9][0-9]|60))?$ (also quoted in design 4.2 as the 422 rule) accepts "
            "wait=10..99; the server's _PREFER_WAIT uses [1-5][0-9] and rejects 61..99. Expected: "
            "201/202 (wait clamped to 60 s), Preference-Applied echoing the value.",
        ),
    ),
    (
        "test_schemathesis.py::test_bug_models_create_echoes_non_uri_url_fields",
        Entry(
            "url-fields-echo-non-uris",
            "BUG",
            "BUG: POST /v1/models (and PATCH /v1/models/{owner}/{name}) with "
            '`license_url: ""` / `cover_image_url: ""` (any non-URI string) answers 201/200 and '
            "echoes the string, but the response schema types these fields as "
            "{format: uri} or null (Schemathesis ST108). Expected: 422 problem+json for a "
            "non-URI value (or null stored), never a non-URI string in a model object.",
        ),
    ),
    (
        "test_schemathesis.py::test_operation_conforms[GET /files/{file_id}/download]",
        Entry(
            "download-content-type",
            "BUG",
            "BUG: GET /v1/files/{id}/download?owner&expiry&signature (valid signature) answers "
            "200 with the upload's type (`text/plain; charset=utf-8` for a text upload); the "
            "spec documents only `application/octet-stream` for 200 (Schemathesis ST105). "
            "Expected: Content-Type application/octet-stream (keep the name in "
            "Content-Disposition). If the real API is later confirmed to send the stored type, "
            "turn this into a DEVIATION instead.",
        ),
    ),
)


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


PARITY_BUGS: dict[str, ParityBug] = {
    "model-created-at": ParityBug(
        Entry(
            "model-created-at",
            "BUG",
            "BUG: model objects have no `created_at`. The real API returns it on GET "
            "/v1/models/{owner}/{name} (predictions-cancel.yaml#1, "
            "test_predictions_create_blocking[*].yaml#0/#3) and in QUERY /v1/models results "
            "(models-search.yaml). Expected: `created_at` (RFC 3339) on every model object "
            "(models.get/list/search/create, collections).",
        ),
        problem=r"^\$(\.results\[0\])?\.created_at: missing locally$",
        example="predictions-cancel.yaml#1",
        uri=r"/v1/models",
    ),
    "search-extra-fields": ParityBug(
        Entry(
            "search-extra-fields",
            "BUG",
            "BUG: QUERY /v1/models results carry `is_official` and `weights_url`; the real "
            "search response (models-search.yaml, 2024) has neither, and the spec's search "
            "item schema declares neither (models.get does return both). Expected: search "
            "results with the keys of the recording: cover_image_url, created_at, "
            "default_example, description, github_url, latest_version, license_url, name, "
            "owner, paper_url, run_count, url, visibility.",
        ),
        problem=r"^\$\.results\[0\]\.(is_official|weights_url): extra locally",
        example="models-search.yaml#0",
        uri=r"/v1/models$",
    ),
    "example-stream-url": ParityBug(
        Entry(
            "example-stream-url",
            "BUG",
            "BUG: the default_example of a streaming model (local-demo/stream-text, e.g. in "
            "QUERY /v1/models 'stream-text' or GET /v1/models/local-demo/stream-text) has no "
            "`urls.stream`, while the real API's examples of streaming models carry it "
            "(models-search.yaml#0) and the model's own predictions carry it locally.",
        ),
        problem=r"default_example\.urls\.stream: missing locally$",
        example="models-search.yaml#0",
        uri=r"/v1/models",
    ),
}

for _id, _bug in PARITY_BUGS.items():
    TEST_ENTRIES[f"test_recording_parity.py::test_parity_bug[{_id}]"] = _bug.entry

# ------------------------------------------------------------------ narrow tolerances in checks
TOLERANCES: dict[str, Entry] = {
    # -- Schemathesis harness: how generated cases are steered (test_schemathesis.fix_case).
    "no-random-webhooks": Entry(
        "no-random-webhooks",
        "HARNESS",
        "Generated `webhook` URLs are dropped from create bodies: the server would POST to "
        "random hosts (CI has no network, and deliveries retry in the background). Webhooks "
        "are covered by tests/server/test_webhooks.py.",
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
        "'- Additional property X is not allowed', the real API's body-shape error quoted in "
        "design section 8 (seen for predictions.create, whose schema does forbid extras). "
        "Whether the real API is as strict on these routes is unverified; confirm before "
        "release, then make this a BUG or keep it.",
    ),
    # -- Recording parity (test_recording_parity.differences / shape_diff).
    "ratelimit-on-every-reply": Entry(
        "ratelimit-on-every-reply",
        "DEVIATION",
        "The local server sends ratelimit-remaining/ratelimit-reset on every /v1 reply (design "
        "4.2: 'Every reply carries ratelimit-*'); the 2024 Files API recordings and the 401 "
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
    "prefer-documented-range": Entry(
        "prefer-documented-range",
        "HARNESS",
        "Steers around BUG prefer-wait-61-99 in the fuzzed create operations (values 61..99 "
        "become wait=60) so those operations keep checking everything else; the bug itself is "
        "pinned by test_bug_prefer_wait_allowed_by_spec_pattern. Remove with the bug.",
    ),
    "url-fields-are-urls": Entry(
        "url-fields-are-urls",
        "HARNESS",
        "Steers around BUG url-fields-echo-non-uris in fuzzed models.create/models.update "
        "(non-URI url fields become https URLs); the bug is pinned by "
        "test_bug_models_create_echoes_non_uri_url_fields. Remove with the bug.",
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
