"""The pytest plugin: light at import, fixtures work, and a missing [local] extra skips."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
import httpx

def test_server_and_env(replicate_server, replicate_base_url, replicate_env):
    assert replicate_base_url == replicate_server.base_url
    r = httpx.post(replicate_base_url + "/v1/predictions",
                   json={"version": "replicate/hello-world", "input": {"text": "plugin"}},
                   headers={"Authorization": "Bearer " + replicate_env["REPLICATE_API_TOKEN"], "Prefer": "wait"})
    assert r.json()["output"] == "hello plugin"

def test_client_fixture(replicate_client, replicate_server):
    import replicate
    assert isinstance(replicate_client, replicate.Client)

def test_reset_happened(replicate_server):
    r = httpx.get(replicate_server.base_url + "/v1/predictions", headers={"Authorization": "Bearer x"})
    assert r.json()["results"] == []
"""


def _run_pytest(tmp_path: Path, extra_conftest: str = "") -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "conftest.py").write_text(extra_conftest)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_user.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plugin_import_is_light() -> None:
    code = "import sys, replicate.local.pytest_plugin; import replicate; assert not [m for m in sys.modules if m.startswith(('starlette', 'uvicorn', 'replicate.local.server', 'replicate.local.app'))], sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_import_replicate_does_not_import_local() -> None:
    code = "import sys, replicate; assert not [m for m in sys.modules if m.startswith('replicate.local')]"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_fixtures_in_a_user_suite(tmp_path: Path) -> None:
    # test_reset_happened runs after test_client_fixture, whose teardown resets the server;
    # the prediction from the first test is gone by then.
    res = _run_pytest(tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 passed" in res.stdout


def test_missing_extra_skips_instead_of_failing(tmp_path: Path) -> None:
    blocker = textwrap.dedent(
        """
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("starlette", "uvicorn"):
                    raise ImportError("No module named " + repr(name))
                return None
        for m in [m for m in sys.modules if m.split(".")[0] in ("starlette", "uvicorn")]:
            del sys.modules[m]
        sys.meta_path.insert(0, _Block())
        """
    )
    res = _run_pytest(tmp_path, blocker)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 skipped" in res.stdout, res.stdout


TLS_TESTS = """
import os

def test_https(replicate_server, replicate_client, replicate_env):
    assert replicate_server.base_url.startswith("https://")
    assert replicate_env["SSL_CERT_FILE"] == replicate_server.ca_file == os.environ["SSL_CERT_FILE"]
    assert replicate_env["NODE_EXTRA_CA_CERTS"] == replicate_server.ca_file
    out = replicate_client.run("local-demo/make-file", input={"text": "x"})
    assert out.url.startswith("https://") and out.read()[:4] == b"\\x89PNG"
"""


def test_tls_by_option_and_by_ini(tmp_path: Path) -> None:
    (tmp_path / "test_tls_user.py").write_text(TLS_TESTS)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tls_user.py"]
    by_option = subprocess.run(
        [*command, "--replicate-tls"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert by_option.returncode == 0 and "1 passed" in by_option.stdout, by_option.stdout
    (tmp_path / "pytest.ini").write_text("[pytest]\nreplicate_tls = true\n")
    by_ini = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert by_ini.returncode == 0 and "1 passed" in by_ini.stdout, by_ini.stdout
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    plain = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1 and "1 failed" in plain.stdout, plain.stdout
