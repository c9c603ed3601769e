"""Contract check with Schemathesis (when installed): the official OpenAPI spec against the server.

Checks: no server errors, and responses that conform to the spec (status-dependent schemas,
content types, headers, Allow on 405, use-after-free / resource availability in stateful runs).
Deployments, trainings, collections and search belong to a later part and are excluded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from replicate.local.server import LocalServer

pytest.importorskip("schemathesis")

_ROOT = Path(__file__).resolve().parents[2]
_SPEC_CANDIDATES = [
    Path(os.environ["REPLICATE_SHARED_DIR"]) / "spec" / "replicate-openapi.json"
    if os.environ.get("REPLICATE_SHARED_DIR")
    else None,
    _ROOT.parent / "shared" / "spec" / "replicate-openapi.json",
    Path("/work/shared/spec/replicate-openapi.json"),
]
SPEC = next((p for p in _SPEC_CANDIDATES if p is not None and p.is_file()), None)

CHECKS = ",".join(
    [
        "not_a_server_error",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


@pytest.mark.skipif(SPEC is None, reason="the OpenAPI spec is not available")
def test_schemathesis_conformance(tmp_path: Path) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which(
        "schemathesis"
    )
    if exe is None:
        pytest.skip("schemathesis command not found")
    with LocalServer() as s:
        res = subprocess.run(
            [
                exe,
                "run",
                str(SPEC),
                "--url",
                f"{s.base_url}/v1",
                "-H",
                "Authorization: Bearer contract",
                "--checks",
                CHECKS,
                "-n",
                "10",
                "--seed",
                "1",
                "--no-color",
                "--exclude-path-regex",
                "^/(deployments|trainings|collections|search)",
                "--exclude-path-regex",
                "trainings",
                "--phases",
                "examples,fuzzing,stateful",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
