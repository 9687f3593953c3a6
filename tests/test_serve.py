"""`slimformer serve`: the real server on 127.0.0.1, answering as Variant.predict() does,
batching concurrent requests, refusing bad ones with a 4xx JSON, shedding overload with 429,
and finishing in-flight requests on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory, tokenizer, clinc) -> Path:
    """A tiny classifier's ONNX export with a fallback rule that bites on some queries."""
    from slimformer.compression.onnx.export import export_onnx
    from slimformer.data.args import DataArguments
    from slimformer.serving.fit_fallback import fit_and_store

    from .conftest import tiny_bert

    root = tmp_path_factory.mktemp("serve")
    tiny_bert(initializer_range=0.5).save_pretrained(root / "torch")
    tokenizer.save_pretrained(root / "torch")
    export_onnx(root / "torch", root / "onnx")
    validation = clinc["validation"].shuffle(seed=0).select(range(300))
    fit_and_store(root / "onnx", "onnx-lean", validation, DataArguments(max_in_scope_drop=20.0))
    return root / "onnx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path, *flags: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slimformer.cli.main", "serve", str(folder), "--port",
             str(self.port), "--workers", "1", "--threads", "1", *flags], env=ENV,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.process.stdout.read()}")
            try:
                if request(self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not become healthy")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def request(url: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 30) -> tuple[int, dict, object]:
    """Status, headers and the JSON answer (or text) of one request."""
    req = urllib.request.Request(url, data=body, headers={
        "content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            status, head, raw = reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as err:
        status, head, raw = err.code, dict(err.headers), err.read()
    try:
        return status, head, json.loads(raw)
    except ValueError:
        return status, head, raw.decode("utf-8", "replace")


def predict(url: str, inputs, **extra) -> tuple[int, dict, object]:
    return request(url + "/predict", json.dumps({"inputs": inputs, **extra}).encode())


@pytest.fixture(scope="module")
def server(onnx_folder):
    running = Server(onnx_folder, "--max_wait_ms", "20", "--cache_size", "0")
    yield running
    running.stop()


def metrics_of(url: str) -> dict[str, list]:
    from prometheus_client.parser import text_string_to_metric_families

    status, _, text = request(url + "/metrics")
    assert status == 200
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_answers_equal_variant_predict_fallback_included(server, onnx_folder, clinc):
    from slimformer.serving.lean import LeanOnnxVariant

    variant = LeanOnnxVariant.load(onnx_folder, "v", threads=1)
    texts = clinc["test"].shuffle(seed=1).select(range(32))["text"][:]  # the most a request
    expected = variant.predict(texts, return_scores=True, top_k=3)
    status, headers, answers = predict(server.url, texts, top_k=3)
    assert status == 200 and len(answers) == 32
    for got, want in zip(answers, expected):
        assert got["label"] == want["label"] and got["fallback"] == want["fallback"]
        assert got["score"] == pytest.approx(want["score"], rel=1e-5)
        assert [t["label"] for t in got["top_k"]] == [t["label"] for t in want["top_k"]]
    assert any(a["fallback"] for a in answers) and not all(a["fallback"] for a in answers)
    single = predict(server.url, texts[0])[2]
    assert single[0]["label"] == expected[0]["label"] and "top_k" not in single[0]
    assert float(headers["x-total-time"]) >= float(headers["x-inference-time"]) > 0


def test_concurrent_requests_are_batched(server, clinc):
    texts = clinc["test"].select(range(48))["text"][:]
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda t: predict(server.url, t), texts))
    assert all(status == 200 for status, _, _ in replies)
    samples = metrics_of(server.url)["slimformer_batch_size"]
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert total > count, "every batch held one text: nothing was merged"
    below_two = next(s.value for s in samples if s.name.endswith("_bucket")
                     and s.labels["le"] == "1.0")
    assert below_two < count  # some batches above 1


BAD = [
    (b"{not json", 422, "validation", "not JSON"),
    (b'["a list"]', 422, "validation", "JSON object"),
    (b'{"inputs": 5}', 422, "validation", "a text or a list"),
    (b'{"inputs": [1, 2]}', 422, "validation", "input 0 is int"),
    (b'{"inputs": []}', 422, "validation", "empty list"),
    (b'{"text": "hi"}', 422, "validation", "unknown field"),
    (b'{"inputs": "hi", "extra": 1}', 422, "validation", "unknown field"),
    (b'{"inputs": "hi", "top_k": -1}', 422, "validation", "top_k"),
    (b'{"inputs": "hi", "top_k": "3"}', 422, "validation", "top_k"),
    (b'{"inputs": "\\ud800 lone"}', 422, "validation", "not valid Unicode"),
    (b'{"inputs": "\xff\xfe bad"}', 422, "validation", "not UTF-8"),
    (json.dumps({"inputs": ["q"] * 40}).encode(), 413, "payload_too_large", "40 texts"),
    (json.dumps({"inputs": "word " * 1000}).encode(), 413, "payload_too_large", "characters"),
    (b'{"inputs": "' + b"a" * 1_100_000 + b'"}', 413, "payload_too_large", "bytes"),
    (b"", 422, "validation", "not JSON"),
]


@pytest.mark.parametrize(("body", "status", "error_type", "message"), BAD,
                         ids=[f"{i}-{b[:14]!r}" for i, (b, *_) in enumerate(BAD)])
def test_a_bad_request_gets_its_4xx_json_and_the_server_goes_on(server, body, status,
                                                                 error_type, message):
    got, _, answer = request(server.url + "/predict", body)
    assert got == status, answer
    assert answer["error_type"] == error_type and message in answer["error"]
    assert request(server.url + "/health")[0] == 200
    assert predict(server.url, "what is my balance")[0] == 200


def test_other_routes(server, onnx_folder):
    status, _, info = request(server.url + "/info")
    assert status == 200 and info["kind"] == "onnx-lean" and info["state"] == "ready"
    assert info["model"] == onnx_folder.name and len(info["labels"]) == 151
    assert info["fallback"]["score"] == "max_logit" and "rule" in info["fallback"]
    assert info["slimformer_version"] and info["settings"]["max_wait_ms"] == 20.0
    status, _, page = request(server.url + "/")
    assert status == 200 and "<form" in page and "predict" in page
    status, _, missing = request(server.url + "/nowhere")
    assert status == 404 and missing["error_type"] == "not_found"
    assert request(server.url + "/predict")[0] == 405  # GET


def test_metrics_count_requests_by_route_and_status(server):
    predict(server.url, "what is my balance")
    request(server.url + "/predict", b"{bad")
    families = metrics_of(server.url)
    requests = {(s.labels["route"], s.labels["status"]): s.value
                for s in families["slimformer_requests"] if s.name.endswith("_total")}
    assert requests[("/predict", "200")] >= 1 and requests[("/predict", "422")] >= 1
    assert "slimformer_request_duration_seconds" in families
    assert {"slimformer_queue_depth", "slimformer_cache_hits", "slimformer_fallback_answers"
            } <= set(families)


def test_the_cache_answers_repeated_queries(onnx_folder):
    running = Server(onnx_folder, "--cache_size", "100")
    try:
        first = predict(running.url, ["what is my balance", "book a flight"])
        again = predict(running.url, ["what is my balance", "book a flight"])
        assert first[2] == again[2] and again[1]["x-cache-hits"] == "2"
        hits = metrics_of(running.url)["slimformer_cache_hits"]
        assert next(s.value for s in hits if s.name.endswith("_total")) == 2
    finally:
        running.stop()


def test_a_flood_against_a_small_queue_gets_429s(onnx_folder):
    running = Server(onnx_folder, "--max_queue", "8", "--max_client_batch", "8",
                     "--max_batch_size", "8", "--max_wait_ms", "50", "--cache_size", "0")
    try:
        texts = [f"what is the balance of account {i}" for i in range(8)]
        with ThreadPoolExecutor(24) as pool:
            replies = list(pool.map(lambda _: predict(running.url, texts), range(48)))
        statuses = [status for status, _, _ in replies]
        assert 429 in statuses and 200 in statuses
        assert set(statuses) == {200, 429}
        refused = next(a for s, _, a in replies if s == 429)
        assert refused["error_type"] == "overloaded"
        assert request(running.url + "/health")[0] == 200
    finally:
        running.stop()


def test_sigterm_finishes_the_requests_in_flight(onnx_folder):
    running = Server(onnx_folder, "--max_wait_ms", "400", "--max_batch_size", "64",
                     "--cache_size", "0")
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(predict, running.url, f"query number {i}") for i in range(8)]
        time.sleep(0.2)  # the requests wait in the batching window
        running.process.send_signal(signal.SIGTERM)
        replies = [f.result() for f in futures]
    assert [status for status, _, _ in replies] == [200] * 8
    assert running.process.wait(timeout=30) == 0


def test_the_service_of_an_onnx_folder_never_imports_torch(onnx_folder):
    code = ("import sys, json\n"
            "from starlette.testclient import TestClient\n"
            "from slimformer.serving.http import create_app\n"
            "import slimformer.cli.commands.serve, slimformer.serving.server\n"
            f"with TestClient(create_app({str(onnx_folder)!r})) as client:\n"
            "    import time\n"
            "    while client.get('/health').status_code != 200: time.sleep(0.05)\n"
            "    assert client.post('/predict', json={'inputs': 'hi'}).status_code == 200\n"
            "print(json.dumps([m for m in ('torch', 'transformers', 'optimum') "
            "if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(("flags", "message"), [
    (["--workers", "0"], "--workers must be"), (["--max_wait_ms", "nan"], "finite"),
    (["--port", "70000"], "--port must be"), (["--threads", "two"], "invalid int"),
    ([], "give a variant folder or --run"), (["--run", "/nonexistent"], "no best.json")])
def test_bad_serve_arguments_are_one_line(flags, message, onnx_folder):
    folder = [] if "--run" in flags or not flags else [str(onnx_folder)]
    result = subprocess.run([sys.executable, "-m", "slimformer.cli.main", "serve", *folder,
                             *flags], capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


@pytest.mark.skipif(not __import__("shutil").which("wrk"), reason="wrk is not installed "
                    "(Debian: apt-get install wrk; .ci/run installs it)")
def test_loadtest_reports_every_level(server, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("what is my balance\nbook a flight to paris\nplay some jazz\n")
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "slimformer.cli.main", "loadtest", server.url, "--queries",
         str(queries), "--concurrency", "1", "4", "--duration_s", "1", "--warmup_s", "0",
         "--server_pid", str(server.process.pid), "--output_dir", str(out)],
        capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "loadtest.json").read_text())
    assert [level["concurrency"] for level in report["levels"]] == [1, 4]
    for level in report["levels"]:
        assert level["requests"] > 0 and level["non_2xx"] == 0 and level["socket_errors"] == 0
        assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
        assert level["server_cpu_cores"] > 0 and level["client_cpu_cores"] > 0
    assert report["environment"]["cpu"]["cores"] >= 1
    assert (out / "loadtest.png").stat().st_size > 5_000
    assert "| 4 |" in (out / "loadtest.md").read_text()
    again = subprocess.run(  # a folder this command did not write is refused
        [sys.executable, "-m", "slimformer.cli.main", "loadtest", server.url, "--queries",
         str(queries), "--output_dir", str(tmp_path)], capture_output=True, text=True,
        env=ENV, timeout=60)
    assert again.returncode == 2 and "already holds" in again.stderr


def browser():
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no chromium and chromedriver (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(service=DriverService(driver), options=options)


def test_the_page_answers_a_query_in_a_real_browser(server, onnx_folder, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    from slimformer.serving.lean import LeanOnnxVariant

    variant = LeanOnnxVariant.load(onnx_folder, "v", threads=1)
    driver = browser()
    try:
        driver.get(server.url + "/")
        assert onnx_folder.name in driver.title
        shown: list[str] = []
        for query in ("what is my balance", "play some jazz please"):
            box = driver.find_element(By.ID, "query")
            box.clear()
            box.send_keys(query)
            driver.find_element(By.ID, "send").click()
            WebDriverWait(driver, 20).until(
                ready.text_to_be_present_in_element((By.ID, "answer"), "answered"))
            expected = variant.predict([query], return_scores=True)[0]
            assert driver.find_element(By.ID, "label").text == expected["label"]
            assert float(driver.find_element(By.ID, "score").text) == pytest.approx(
                expected["score"], abs=1e-3)
            said = driver.find_element(By.ID, "fallback").text
            assert said == ("the out-of-scope fallback answered" if expected["fallback"]
                            else "the model answered")
            shown.append(query)
            driver.execute_script("document.getElementById('answer').innerHTML = ''")
        driver.save_screenshot(str(tmp_path / "page.png"))
        box = driver.find_element(By.ID, "query")
        box.clear()
        driver.execute_script("document.getElementById('query').removeAttribute('maxlength')")
        box.send_keys("x" * 2100)  # too long: the page shows the service's 413 message
        driver.find_element(By.ID, "send").click()
        WebDriverWait(driver, 20).until(ready.presence_of_element_located((By.ID, "error")))
        assert "characters" in driver.find_element(By.ID, "error").text
    finally:
        driver.quit()


def test_several_workers_serve_one_port_and_stop_cleanly(onnx_folder):
    running = Server(onnx_folder, "--workers", "2")
    try:
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda i: predict(running.url, f"query {i}"), range(16)))
        assert all(status == 200 for status, _, _ in replies)
        import psutil

        workers = [p for p in psutil.Process(running.process.pid).children(recursive=True)
                   if "python" in p.name().lower()]
        assert len(workers) >= 2
    finally:
        running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=60) == 0
