"""``replicate serve`` / ``python -m replicate.local`` argument handling."""

from __future__ import annotations

import pytest

from replicate.local.cli import build_parser, serve_main


def test_parser_accepts_every_option() -> None:
    args = build_parser().parse_args(
        [
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            ":memory:",
            "--token",
            "a",
            "--token",
            "b",
            "--test-controls",
            "--retention",
            "never",
            "--webhook-secret",
            "whsec_AAAA",
            "--public-url",
            "http://localhost:9",
            "--sync-file-outputs",
            "data-uri",
            "--no-demo-models",
            "--log-level",
            "info",
        ]
    )
    assert (
        args.token == ["a", "b"] and args.port == 0 and args.test_controls and args.no_demo_models
    )
    assert args.sync_file_outputs == "data-uri" and args.retention == "never"


def test_non_loopback_needs_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["--host", "0.0.0.0"]) == 2
    assert "--token" in capsys.readouterr().err


def test_bad_retention(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["--retention", "soon"]) == 2
    assert "--retention" in capsys.readouterr().err
