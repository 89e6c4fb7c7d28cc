"""dk.tune on SQLite (continuation, a killed worker, three workers) and on a real PostgreSQL."""

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
import textwrap
import time
import types
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

import dropkit as dk  # noqa: E402
from dropkit.advisor.target import load_target  # noqa: E402
from dropkit.advisor.tuning import check_space, storage, storage_url  # noqa: E402
from tests.advisor.test_tuning_faults import send_when  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
COMPLETE = optuna.trial.TrialState.COMPLETE
RUNNING = optuna.trial.TrialState.RUNNING


def quadratic(rates):
    return (rates["a"] - 0.3) ** 2 + (rates["b"] - 0.1) ** 2


def completed(url, study):
    url = url.replace("postgresql://", "postgresql+psycopg2://")  # the driver of the extra
    return optuna.load_study(study_name=study, storage=url).get_trials(states=(COMPLETE,))


def test_finds_the_minimum_and_reports_the_study(tmp_path):
    path = tmp_path / "s.db"
    result = dk.tune(
        quadratic, {"a": (0.0, 0.6), "b": (0.0, 0.5)}, storage=path, n_trials=25, seed=1
    )
    assert isinstance(result, dk.TuneResult)
    assert result.finished == 25 and result.ran == 25
    assert set(result.best_rates) == {"a", "b"}
    assert result.best_value == pytest.approx(quadratic(result.best_rates))
    assert result.best_value == min(t.value for t in result.study.trials)
    assert result.best_value < 0.01
    assert 0.0 <= result.best_rates["b"] <= 0.5


def test_maximize(tmp_path):
    result = dk.tune(
        lambda r: -quadratic(r),
        {"a": (0.0, 0.6), "b": (0.0, 0.5)},
        storage=tmp_path / "m.db",
        n_trials=10,
        direction="maximize",
        seed=0,
    )
    assert result.best_value == max(t.value for t in result.study.trials)


def test_calling_again_continues_the_study(tmp_path):
    path = tmp_path / "c.db"
    first = dk.tune(quadratic, {"a": (0, 1), "b": (0, 1)}, storage=path, n_trials=4, seed=0)
    values = [t.value for t in first.study.trials]
    second = dk.tune(quadratic, {"a": (0, 1), "b": (0, 1)}, storage=path, n_trials=7, seed=1)
    assert (second.finished, second.ran) == (7, 3)
    assert [t.value for t in second.study.trials][:4] == values
    third = dk.tune(quadratic, {"a": (0, 1), "b": (0, 1)}, storage=path, n_trials=7)
    assert third.ran == 0


def test_separate_studies_in_one_storage(tmp_path):
    path = tmp_path / "two.db"
    dk.tune(quadratic, {"a": (0, 1), "b": (0, 1)}, storage=path, study_name="x", n_trials=2)
    other = dk.tune(quadratic, {"a": (0, 1), "b": (0, 1)}, storage=path, study_name="y", n_trials=3)
    assert other.finished == 3
    assert len(completed(storage_url(path), "x")) == 2
    # Without a name, each objective (and each space) gets a study of its own.
    first = dk.tune(quadratic, {"a": (0, 1), "b": (0, 1)}, storage=path, n_trials=2)
    second = dk.tune(lambda r: r["a"], {"a": (0, 1)}, storage=path, n_trials=1)
    third = dk.tune(quadratic, {"a": (0, 1), "b": (0, 0.5)}, storage=path, n_trials=1)
    assert len({first.study_name, second.study_name, third.study_name, "x", "y"}) == 5
    assert (second.finished, third.finished) == (1, 1)


def test_reporter_prunes_hopeless_trials(tmp_path):
    def objective(rates, report):
        for step in range(10):
            # Rates far from 0.2 report bad values from the first step on.
            report(abs(rates["a"] - 0.2) * (10 - step), step)
        return abs(rates["a"] - 0.2)

    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    result = dk.tune(
        objective, {"a": (0.0, 1.0)}, storage=tmp_path / "p.db", n_trials=20, pruner=pruner, seed=0
    )
    states = [t.state for t in result.study.trials]
    assert optuna.trial.TrialState.PRUNED in states
    assert result.finished == 20
    complete = [t for t in result.study.trials if t.state == COMPLETE]
    assert all(len(t.intermediate_values) == 10 for t in complete)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "non-empty dict"),
        ({"a": (0.5, 0.2)}, "low 0.5 above high 0.2"),
        ({"a": (0.0, 1.5)}, r"space\['a'\] high must be a probability in \[0, 1\], got 1.5"),
        ({"a": 0.3}, r"must be a \(low, high\) pair"),
        ({"": (0, 1)}, "non-empty strings"),
    ],
)
def test_bad_space(space, message):
    with pytest.raises(ValueError, match=message):
        check_space(space)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_trials must be an int >= 1, got 0"):
        dk.tune(quadratic, {"a": (0, 1)}, storage=tmp_path / "x.db", n_trials=0)
    with pytest.raises(ValueError, match="direction must be one of"):
        dk.tune(quadratic, {"a": (0, 1)}, storage=tmp_path / "x.db", direction="up")
    with pytest.raises(ValueError, match="cannot open the storage nosuch://"):
        dk.tune(quadratic, {"a": (0, 1)}, storage="nosuch://host/db")


def test_direction_of_an_existing_study_is_checked(tmp_path):
    path = tmp_path / "d.db"
    space = {"a": (0, 1), "b": (0, 1)}
    dk.tune(quadratic, space, storage=path, study_name="d", n_trials=1)
    with pytest.raises(ValueError, match="already exists with direction minimize.*--study NEW"):
        dk.tune(quadratic, space, storage=path, study_name="d", n_trials=2, direction="maximize")


def test_default_storage_is_a_local_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dk.tune(quadratic, {"a": (0, 1), "b": (0, 1)}, n_trials=2)
    assert (tmp_path / "dropkit-tune.db").is_file()
    assert storage_url(None) == "sqlite:///dropkit-tune.db"
    assert storage_url(tmp_path / "f.db") == f"sqlite:///{tmp_path / 'f.db'}"
    assert storage_url("postgresql://u@h/db") == "postgresql://u@h/db"


WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    def objective(rates):
        folder = Path(os.environ["TUNE_FOLDER"])
        if (folder / "hang").exists():  # stay inside a running trial until killed
            (folder / "hanging").touch()
            time.sleep(600)
        time.sleep(float(os.environ["TUNE_PAUSE"]))
        with open(folder / "calls.log", "a") as log:
            log.write(f"{os.getpid()}\\n")
        return (rates["a"] - 0.3) ** 2

    if __name__ == "__main__":
        import optuna
        import dropkit as dk

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage, trials = sys.argv[1], int(sys.argv[2])
        seed, workers = int(sys.argv[3]), int(sys.argv[4])
        folder = Path(os.environ["TUNE_FOLDER"])
        (folder / f"ready-{os.getpid()}").touch()
        deadline = time.time() + 60
        while len(list(folder.glob("ready-*"))) < workers and time.time() < deadline:
            time.sleep(0.05)
        result = dk.tune(objective, {"a": (0.0, 1.0)}, storage=storage, study_name="shared",
                         n_trials=trials, seed=seed)
        print(result.ran, result.finished)
    """
)


def start_worker(tmp_path, storage, trials, seed, pause, workers):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return subprocess.Popen(
        [sys.executable, str(script), storage, str(trials), str(seed), str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TUNE_FOLDER": str(tmp_path), "TUNE_PAUSE": str(pause)},
    )


def test_killed_worker_loses_no_finished_trial_and_its_trial_is_failed(tmp_path, monkeypatch):
    url = storage_url(tmp_path / "killed.db")
    worker = start_worker(tmp_path, url, 200, 0, 0.1, 1)

    def hanging_after_three():
        try:
            if len(completed(url, "shared")) >= 3:
                (tmp_path / "hang").touch()
        except Exception:  # the tables or the study are not created yet
            pass
        return (tmp_path / "hanging").exists()

    send_when(worker, hanging_after_three, signal.SIGKILL)
    assert worker.returncode == -signal.SIGKILL
    (tmp_path / "hang").unlink()
    before = {t.number: t.value for t in completed(url, "shared")}
    assert len(before) >= 3
    assert optuna.load_study(study_name="shared", storage=url).trials[-1].state == RUNNING
    # The same objective, loaded from the worker's script, continues the worker's study here.
    monkeypatch.setenv("TUNE_FOLDER", str(tmp_path))
    monkeypatch.setenv("TUNE_PAUSE", "0")
    monkeypatch.setattr(storage, "GRACE_SECONDS", 1)
    time.sleep(3.0)  # the grace period, with the database clock's whole seconds (SQLite)
    objective = load_target(f"{tmp_path / 'worker.py'}:objective")
    full = dk.tune(
        objective, {"a": (0.0, 1.0)}, storage=url, study_name="shared", n_trials=len(before)
    )
    assert full.ran == 0  # the study held enough trials: only the stale one was failed
    states = [t.state for t in full.study.get_trials()]
    assert states.count(RUNNING) == 0 and states[-1] == optuna.trial.TrialState.FAIL
    resumed = dk.tune(
        objective, {"a": (0.0, 1.0)}, storage=url, study_name="shared", n_trials=len(before) + 2
    )
    assert (resumed.ran, resumed.finished) == (2, len(before) + 2)
    after = {t.number: t.value for t in completed(url, "shared")}
    assert {n: after[n] for n in before} == before  # every finished trial is still there


def run_workers_at_once(tmp_path, url, count, trials):
    """``count`` workers released together on a storage nobody has created yet: every one must
    start, join the one study and end with exit code 0."""
    workers = [start_worker(tmp_path, url, trials, seed, 0.15, count) for seed in range(count)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=False):
        assert worker.returncode == 0, err
    reports = [[int(word) for word in out.split()] for out, _ in outputs]
    finished = len(completed(url, "shared"))
    # Workers stop when the study holds `trials`; a trial already running then still finishes.
    assert trials <= finished <= trials + count - 1
    assert sum(ran for ran, _ in reports) == finished  # one study, no trial counted twice
    assert all(seen >= trials for _, seen in reports)


def test_three_workers_start_at_once_on_a_new_sqlite_file(tmp_path):
    run_workers_at_once(tmp_path, storage_url(tmp_path / "shared.db"), 3, 6)


def find_initdb():
    candidates = [shutil.which("initdb"), "/usr/local/bin/initdb"]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def as_user(command, user):
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", user, "-s", "/bin/sh", "-c", " ".join(command)]


def server_user():
    """initdb refuses root: use (or create) an unprivileged system user when running as root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in ("postgres", "dropkit-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "dropkit-pg"], check=True)
    return "dropkit-pg"


class PostgresServer:
    """A throwaway PostgreSQL cluster on a loopback port, run by an unprivileged user."""

    def __init__(self, initdb, user):
        self.pg_ctl = initdb.with_name("pg_ctl")
        self.user = user
        entry = pwd.getpwnam(user)
        self.folder = Path(tempfile.mkdtemp(prefix="dropkit-pg-"))
        os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.data = self.folder / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        subprocess.run(
            as_user(
                [str(initdb), "-D", str(self.data), "-U", "dropkit", "--auth=trust", "-E", "UTF8"],
                user,
            ),
            check=True,
            capture_output=True,
            cwd=self.folder,
        )
        self.url = f"postgresql://dropkit@127.0.0.1:{self.port}/postgres"

    def start(self):
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.folder / "log"
        start = as_user(
            [
                str(self.pg_ctl),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
            ],
            self.user,
        )
        if start[0] == "su":  # su takes one command string: quote the options
            command = f"{self.pg_ctl} -D {self.data} -o '{options}' -l {log} -w -t 60 start"
            start = ["su", self.user, "-s", "/bin/sh", "-c", command]
        subprocess.run(start, check=True, capture_output=True, cwd=self.folder)

    def stop(self, mode="immediate"):
        stop = as_user([str(self.pg_ctl), "-D", str(self.data), "-m", mode, "stop"], self.user)
        subprocess.run(stop, capture_output=True, cwd=self.folder)

    def database(self, name):
        """A fresh database on the server: each test gets an empty storage."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="dropkit", dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        connection.close()
        return self.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_server():
    initdb = find_initdb()
    if initdb is None:
        pytest.skip("no PostgreSQL initdb found (PATH, /usr/local/bin, /usr/lib/postgresql/*/bin)")
    pytest.importorskip("psycopg2")
    server = PostgresServer(initdb, server_user())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, request):
    return postgres_server.database(f"test_{abs(hash(request.node.name)) % 10**8}")


def test_postgresql_storage_is_shared_and_continued(postgres_url, tmp_path):
    first = dk.tune(
        quadratic,
        {"a": (0, 1), "b": (0, 1)},
        storage=postgres_url,
        study_name="pg",
        n_trials=3,
        seed=0,
    )
    assert first.finished == 3
    first_values = [t.value for t in first.study.trials]
    again = dk.tune(
        quadratic,
        {"a": (0, 1), "b": (0, 1)},
        storage=postgres_url,
        study_name="pg",
        n_trials=5,
        seed=0,
    )
    assert (again.finished, again.ran) == (5, 2)
    values = [t.value for t in again.study.trials]
    assert values[:3] == first_values
    assert len(set(values)) == 5  # the resume with the same seed drew new rates


def test_three_workers_start_at_once_on_a_new_postgresql_database(postgres_url, tmp_path):
    run_workers_at_once(tmp_path, postgres_url, 3, 6)


def test_a_score_finished_while_the_server_is_down_is_stored_after_it_returns(
    postgres_server, postgres_url, monkeypatch
):
    import threading

    from dropkit.advisor.tuning import storage

    monkeypatch.setattr(storage, "RETRY_DELAYS", (0.5,) * 30)
    pauses = []
    pause = types.SimpleNamespace(
        sleep=lambda seconds: (pauses.append(seconds), time.sleep(seconds))
    )
    monkeypatch.setattr(storage, "time", pause)
    calls = []

    def objective(rates):
        calls.append(rates["a"])
        if len(calls) == 2:  # the server goes away mid-trial and comes back 2 s later
            postgres_server.stop("fast")
            threading.Timer(2.0, postgres_server.start).start()
        return rates["a"]

    result = dk.tune(objective, {"a": (0, 1)}, storage=postgres_url, study_name="down", n_trials=3)
    stored = sorted(t.value for t in completed(postgres_url, "down"))
    assert stored == sorted(calls) and len(calls) == 3
    assert result.finished == 3
    assert pauses, "the storage was retried while the server was down"
