"""Publishing: dry runs write each repository's exact content; pushes fail cleanly, all or nothing.

The Hub is unreachable here, so its HTTP API is played by `FakeHub`, a requests transport
adapter installed with huggingface_hub's `configure_http_backend`: HfApi, requests and
slimformer run for real down to the socket, and the fake records every request it gets.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from slimformer.errors import SlimformerError
from slimformer.evaluation.report_data import load_report
from slimformer.hub.push import push
from slimformer.hub.push_plan import plan_push
from slimformer.hub.staging import dry_run, report_plot

from .test_card import FAKE_TOKEN, Run, build_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def hub_run(tmp_path_factory, clinc_dir) -> Run:
    return build_run(tmp_path_factory.getbasetemp() / "hub-run")


class FakeHub(requests.adapters.BaseAdapter):
    """The few Hub endpoints a push uses, answering like the Hub and recording every call."""

    def __init__(self, user: str = "alice", orgs: tuple[str, ...] = (), role: str = "write",
                 whoami_status: int = 200, failing_commits: tuple[str, ...] = ()):
        super().__init__()
        self.user, self.orgs, self.role = user, orgs, role
        self.whoami_status = whoami_status
        self.failing_commits = failing_commits
        self.calls: list[tuple[str, str]] = []
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, int] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.tokens_seen: set[str] = set()
        self.unreachable = False

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.calls if m != "GET" and "validate-yaml" not in p
                and "preupload" not in p]

    def send(self, request, **kwargs):
        path = urlparse(request.url).path
        self.calls.append((request.method, path))
        if self.unreachable:
            raise requests.ConnectionError(f"Failed to resolve {urlparse(request.url).netloc}")
        auth = request.headers.get("authorization", "")
        self.tokens_seen.add(auth.removeprefix("Bearer "))
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        parts = path.strip("/").split("/")
        if path == "/api/whoami-v2":
            if self.whoami_status != 200:
                return self.answer(request, self.whoami_status, {"error": "Invalid token"})
            return self.answer(request, 200, {
                "name": self.user, "orgs": [{"name": o} for o in self.orgs],
                "auth": {"accessToken": {"role": self.role}}})
        if path == "/api/repos/create":
            data = json.loads(body)
            repo_id = f"{data.get('organization') or self.user}/{data['name']}"
            if repo_id in self.repos:
                return self.answer(request, 409, {"error": "You already created this model repo"})
            self.repos[repo_id] = {".gitattributes": b"*.onnx filter=lfs\n"}
            self.created.append(repo_id)
            return self.answer(request, 200, {"url": f"https://huggingface.co/{repo_id}"})
        if path == "/api/repos/delete":
            data = json.loads(body)
            repo_id = f"{data.get('organization') or self.user}/{data['name']}"
            self.repos.pop(repo_id, None)
            self.deleted.append(repo_id)
            return self.answer(request, 200, {})
        if path == "/api/validate-yaml":
            return self.answer(request, 200, {})
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            repo_id, endpoint = f"{parts[2]}/{parts[3]}", parts[4]
            if repo_id not in self.repos:
                return self.answer(request, 404, {"error": "Repository not found"})
            if endpoint == "preupload":
                files = json.loads(body)["files"]
                return self.answer(request, 200, {"files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files]})
            if endpoint == "tree":
                return self.answer(request, 200, [
                    {"type": "file", "path": p, "oid": "0" * 40, "size": len(c)}
                    for p, c in self.repos[repo_id].items()])
            if endpoint == "commit":
                if repo_id in self.failing_commits:
                    return self.answer(request, 500, {"error": "Internal Error"})
                self.apply_commit(repo_id, body)
                return self.answer(request, 200, {
                    "commitUrl": f"https://huggingface.co/{repo_id}/commit/{'a' * 40}",
                    "commitOid": "a" * 40, "success": True})
        return self.answer(request, 404, {"error": f"unknown endpoint {path}"})

    def apply_commit(self, repo_id: str, body: bytes) -> None:
        files = dict(self.repos[repo_id])
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"], None)
        self.repos[repo_id] = files
        self.commits[repo_id] = self.commits.get(repo_id, 0) + 1

    def answer(self, request, status: int, content) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(content).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """Install a FakeHub behind huggingface_hub; no stored login, online mode, no token set."""
    from huggingface_hub import configure_http_backend, constants

    hub = FakeHub()

    def session() -> requests.Session:
        s = requests.Session()
        s.mount("https://", hub)
        s.mount("http://", hub)
        return s

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    configure_http_backend(session)
    yield hub
    configure_http_backend()


def plans_for(run: Run, namespace: str = "alice"):
    return plan_push(run.report, namespace, "tiny-clinc", report_path=run.report_path)


def push_run(run: Run, **kwargs):
    return push(plans_for(run, kwargs.pop("namespace", "alice")), run.report,
                plot=report_plot(run.report_path), **kwargs)


def test_dry_run_writes_one_repository_per_variant(hub_run, tmp_path):
    plans = plans_for(hub_run)
    written = dry_run(plans, hub_run.report, tmp_path / "hub", plot=report_plot(
        hub_run.report_path), base_model="sentence-transformers/all-MiniLM-L6-v2")
    assert sorted(written) == sorted(f"alice/tiny-clinc-{name}" for name in hub_run.folders)
    for plan in plans:
        folder = tmp_path / "hub" / plan.repo_id
        names = {p.name for p in folder.iterdir()}
        assert {"README.md", "benchmark.png", "config.json", "slimformer.json"} <= names
        assert any(n.endswith((".safetensors", ".onnx")) for n in names)
        assert not any(n.endswith((".bin", ".pt", ".pth")) or n.startswith("checkpoint")
                       for n in names)
        card = (folder / "README.md").read_text()
        assert f'model_id = "{plan.repo_id}"' in card
        for text_file in ("README.md", "config.json", "slimformer.json"):
            text = (folder / text_file).read_text()
            assert str(hub_run.root) not in text and str(tmp_path) not in text
        assert (folder / "benchmark.png").read_bytes() == (
            hub_run.report_path.parent / "report.png").read_bytes()
    # Provenance and config are published without local paths: a folder that is published
    # becomes its repository id, any other local folder its bare name.
    teacher = tmp_path / "hub/alice/tiny-clinc-teacher"
    provenance = json.loads((teacher / "slimformer.json").read_text())
    assert provenance["base_model"] == "tiny-bert"
    assert provenance["steps"][0]["settings"]["output_dir"] == "alice/tiny-clinc-teacher"
    plan = json.loads((tmp_path / "hub" / "push-plan.json").read_text())
    assert [p["repo_id"] for p in plan] == [p.repo_id for p in plans]


def test_dry_run_failure_leaves_the_previous_output(hub_run, tmp_path):
    from slimformer.files import write_marker
    from slimformer.hub.staging import DRY_RUN_STEP

    out = tmp_path / "hub"
    out.mkdir()
    write_marker(out, DRY_RUN_STEP)  # an earlier dry run: replaced only by a complete new one
    (out / "earlier.txt").write_text("kept")
    with pytest.raises(SlimformerError, match="base_model"):
        dry_run(plans_for(hub_run), hub_run.report, out, plot=None, base_model="not an id")
    assert sorted(p.name for p in out.iterdir()) == [".slimformer-output.json", "earlier.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["hub"]  # no staging folder left behind
    dry_run(plans_for(hub_run), hub_run.report, out, plot=None)
    assert not (out / "earlier.txt").exists() and (out / "push-plan.json").is_file()


def test_dry_run_never_replaces_a_folder_it_did_not_write(hub_run, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(SlimformerError, match="already holds files slimformer did not write"):
        dry_run(plans_for(hub_run), hub_run.report, out, plot=None)
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]
    written = dry_run(plans_for(hub_run), hub_run.report, out, plot=None, overwrite=True)
    assert all(folder.is_dir() for folder in written.values())


def test_push_without_a_token_fails_and_sends_nothing(hub_run, fake_hub, capsys):
    with pytest.raises(SlimformerError, match="no Hugging Face token") as err:
        push_run(hub_run)
    assert "nothing was pushed" in str(err.value)
    assert fake_hub.calls == []


def test_push_in_offline_mode_fails_and_sends_nothing(hub_run, fake_hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SlimformerError, match="HF_HUB_OFFLINE"):
        push_run(hub_run)
    assert fake_hub.calls == []


def test_unreachable_hub_fails_before_any_write(hub_run, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    fake_hub.unreachable = True
    with pytest.raises(SlimformerError, match="cannot reach the Hugging Face Hub") as err:
        push_run(hub_run)
    assert "nothing was pushed" in str(err.value)
    assert fake_hub.calls == [("GET", "/api/whoami-v2")]


def test_rejected_token_fails_before_any_write(hub_run, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    fake_hub.whoami_status = 401
    with pytest.raises(SlimformerError, match="rejected the token") as err:
        push_run(hub_run)
    assert FAKE_TOKEN not in str(err.value)
    assert fake_hub.calls == [("GET", "/api/whoami-v2")]


def test_namespace_without_write_access_fails_before_any_write(hub_run, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    with pytest.raises(SlimformerError, match="cannot write to namespace 'someone-else'"):
        push_run(hub_run, namespace="someone-else")
    fake_hub.role = "read"
    with pytest.raises(SlimformerError, match="read-only"):
        push_run(hub_run)
    assert fake_hub.writes() == [] and fake_hub.repos == {}


def test_push_publishes_each_repository_in_one_commit(hub_run, fake_hub, monkeypatch, capsys,
                                                      caplog):
    caplog.set_level(logging.INFO, logger="slimformer")
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    urls = push_run(hub_run)
    expected = sorted(f"alice/tiny-clinc-{name}" for name in hub_run.folders)
    assert sorted(urls) == expected
    assert sorted(fake_hub.repos) == expected
    for repo_id, files in fake_hub.repos.items():
        assert fake_hub.commits[repo_id] == 1
        assert {"README.md", "benchmark.png", "config.json"} <= set(files)
        card = files["README.md"].decode()
        assert "model-index:" in card and f'"{repo_id}"' in card
        assert all(FAKE_TOKEN.encode() not in content for content in files.values())
    assert fake_hub.tokens_seen == {FAKE_TOKEN}  # sent to the Hub in the header, nowhere else
    out = capsys.readouterr()
    assert FAKE_TOKEN not in out.out + out.err + caplog.text
    assert "published https://huggingface.co/alice/tiny-clinc-teacher" in caplog.text
    # Pushing again updates the same repositories, one new commit each.
    push_run(hub_run)
    assert all(n == 2 for n in fake_hub.commits.values())
    assert fake_hub.deleted == []


def test_failure_in_the_middle_leaves_nothing_half_pushed(hub_run, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    plans = plans_for(hub_run)
    if len(plans) < 2:
        pytest.skip("needs two variants")
    failing = plans[1].repo_id
    fake_hub.failing_commits = (failing,)
    with pytest.raises(SlimformerError, match=f"pushing {failing} failed") as err:
        push_run(hub_run)
    message = str(err.value)
    assert FAKE_TOKEN not in message
    assert f"Published completely before it: {plans[0].repo_id}" in message
    # The first repository is complete, the failing one was created then removed again, and
    # the ones after it were never touched.
    assert list(fake_hub.repos) == [plans[0].repo_id]
    assert "README.md" in fake_hub.repos[plans[0].repo_id]
    assert fake_hub.deleted == [failing]
    assert all(p.repo_id not in fake_hub.created for p in plans[2:])


def test_existing_repository_is_not_deleted_when_its_update_fails(hub_run, fake_hub,
                                                                  monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    plans = plans_for(hub_run)
    fake_hub.repos[plans[0].repo_id] = {"README.md": b"old card"}
    fake_hub.failing_commits = (plans[0].repo_id,)
    with pytest.raises(SlimformerError, match="it is unchanged"):
        push_run(hub_run)
    assert fake_hub.repos[plans[0].repo_id] == {"README.md": b"old card"}
    assert fake_hub.deleted == []


def test_only_the_main_process_pushes(hub_run, fake_hub, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert push_run(hub_run) == {}  # no token either: a non-main rank does not even look
    assert fake_hub.calls == []


def test_plan_names_repositories_and_checks_folders(hub_run):
    plans = plan_push(hub_run.report, "org", "tiny-clinc", ["teacher"])
    assert [(p.variant, p.repo_id) for p in plans] == [("teacher", "org/tiny-clinc-teacher")]
    with pytest.raises(SlimformerError, match="'nope' is not in the benchmark report"):
        plan_push(hub_run.report, "org", "tiny-clinc", ["nope"])
    with pytest.raises(SlimformerError, match="folder of variant 'teacher' not found"):
        plan_push(hub_run.report, "org", "tiny-clinc", ["teacher=/no/such/folder"])
    with pytest.raises(SlimformerError, match="bad Hub namespace"):
        plan_push(hub_run.report, "bad namespace!", "tiny-clinc")
    with pytest.raises(SlimformerError, match="valid Hub repository name"):
        plan_push(hub_run.report, "org", "x" * 120)
    with pytest.raises(SlimformerError, match="benchmark report not found"):
        load_report(Path("no/such/report.json"))


def recipe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN",)}
    return subprocess.run([sys.executable, str(REPO / "recipes" / "push.py"), *args],
                          capture_output=True, text=True, cwd=REPO,
                          env={**environ, "HF_HUB_OFFLINE": "1", **(env or {})}, check=False)


def test_recipe_dry_run_and_clean_failure(hub_run, tmp_path):
    out = tmp_path / "dry"
    done = recipe("--config", "recipes/push_offline.yaml", "--report", str(hub_run.report_path),
                  "--namespace", "alice", "--name", "tiny-clinc", "--dry_run_dir", str(out))
    assert done.returncode == 0, done.stderr
    assert "nothing was pushed" in done.stdout
    assert all((out / f"alice/tiny-clinc-{name}" / "README.md").is_file()
               for name in hub_run.folders)
    failed = recipe("--report", str(hub_run.report_path), "--namespace", "alice",
                    "--name", "tiny-clinc", env={"HF_TOKEN": FAKE_TOKEN})
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: HF_HUB_OFFLINE is set")
    assert "Traceback" not in failed.stderr and FAKE_TOKEN not in failed.stderr + failed.stdout
