"""Searches shared across machines: search workers on one study in a real PostgreSQL server
that the test run starts itself (skipped, with the reason, where no server can start)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import REPO, tiny_bert

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def postgres_binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="module")
def postgres_url():
    psycopg = pytest.importorskip("psycopg", reason="psycopg (slimformer[postgres]) missing")
    initdb, pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="slimformer-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", free_port()
    try:
        subprocess.run(as_server_user([initdb, "-D", str(data), "-U", "postgres",
                                       "--auth=trust", "--no-sync"]),
                       check=True, capture_output=True, text=True, timeout=120)
        subprocess.run(as_server_user([
            pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start"]), check=True, capture_output=True, text=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL server could not start: {err}")
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute("CREATE DATABASE slimformer")
        yield f"postgresql://postgres@127.0.0.1:{port}/slimformer"
    finally:
        subprocess.run(as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("teacher")
    tiny_bert().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def search_command(teacher: Path, clinc_dir: Path, storage: str, study: str, trials: int,
                   worker: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "recipes" / "search.py"),
            "--teacher_model", str(teacher), "--student_layers", "0",
            "--data_file", str(clinc_dir / "data_oos_plus.json"), "--max_length", "16",
            "--storage", storage, "--study_name", study, "--n_trials", str(trials),
            "--final_run", "false", "--per_device_train_batch_size", "16",
            "--eval_strategy", "epoch", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "true", "--disable_tqdm", "true", "--search_dir", str(worker / "s"),
            "--output_dir", str(worker / "out"), "--cache_dir", str(worker / "cache"), *extra]


def test_two_workers_share_one_study_on_postgres(tmp_path, teacher, clinc_dir, postgres_url):
    import optuna

    workers = [subprocess.Popen(
        search_command(teacher, clinc_dir, postgres_url, "shared", 3, tmp_path / f"w{i}",
                       "--max_samples", "32", "--min_epochs", "1", "--max_epochs", "1"),
        env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers)))  # none lost, none twice
    assert all(t.state.is_finished() for t in study.trials)
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                       optuna.trial.TrialState.PRUNED)]
    assert len(finished) >= 3


def running_for(study_name: str, url: str, seconds: float):
    """The study's running trial, once it has run (and beaten its heart) for `seconds`."""
    import optuna

    try:
        trials = optuna.load_study(study_name=study_name, storage=url).trials
    except KeyError:  # the worker has not created the study yet
        return None
    for trial in trials:
        started = trial.datetime_start
        if trial.state == optuna.trial.TrialState.RUNNING and started is not None and (
                time.time() - started.timestamp() > seconds):
            return trial
    return None


def test_a_killed_worker_leaves_the_study_usable(tmp_path, teacher, clinc_dir, postgres_url):
    """kill -9 mid-trial: after the grace period its trial is marked failed and queued again;
    a restarted worker finishes every planned trial and loses none that had finished."""
    import optuna

    command = search_command(teacher, clinc_dir, postgres_url, "killed", 3, tmp_path,
                             "--max_samples", "1000", "--min_epochs", "3", "--max_epochs", "3",
                             "--heartbeat_interval", "1", "--grace_period", "3")
    worker = subprocess.Popen(command, env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, victim = time.time() + 300, None
    while victim is None and worker.poll() is None and time.time() < deadline:
        time.sleep(0.5)
        victim = running_for("killed", postgres_url, 1.5)
    assert victim is not None, "no trial ran long enough to be killed mid-way"
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    done_before = {t.number for t in optuna.load_study(study_name="killed",
                                                        storage=postgres_url).trials
                   if t.state == optuna.trial.TrialState.COMPLETE}
    time.sleep(4)  # past the grace period: the killed trial's heartbeat is stale
    result = subprocess.run(command, env=ENV, cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="killed", storage=postgres_url).trials
    states = {t.number: t.state for t in trials}
    assert states[victim.number] == optuna.trial.TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retried) == 1 and retried[0].params == victim.params
    assert done_before <= {n for n, s in states.items()
                           if s == optuna.trial.TrialState.COMPLETE}  # none lost
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
               for s in states.values()) >= 3


def test_a_password_holding_at_colon_and_slash_reaches_the_server(postgres_url):
    """Written as a user types it (unencoded): the storage opens, where SQLAlchemy alone would
    take the text after the first '@' for the host."""
    from slimformer.training.search import open_storage

    scheme, _, rest = postgres_url.partition("://")
    user, _, host = rest.partition("@")
    storage = open_storage(f"{scheme}://{user}:p@ss:w/rd@{host}")
    assert storage.get_all_studies() is not None
