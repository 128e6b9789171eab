"""The command line's error contract (issue 12): a bad spec is refused by `search`, `submit` and `resume` before
anything starts (one line naming the key path, exit 2, no MLflow run); mritune's own errors are one line, anything
else keeps its traceback with another exit code, and `--debug` / MRITUNE_DEBUG=1 show user errors' tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mritune.platform.infra.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, report_error
from tests.fixtures_processes import free_ports
from tests.platform.search_helpers import tiny_spec

BAD_SPECS = [  # (override, the key path the one-line error must name)
    ("search.options.xi=0.1", "search.options.xi: unknown option for searcher 'gpyopt'"),
    ("scheduler.grace_period=5", "scheduler.grace_period: must be an integer in [1, max_t=2]"),
    ("registry.model_name=team/classifier", "registry.model_name: 'team/classifier'"),
]


def mritune(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from mritune.platform.cli.app import main; main()", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture()
def store(tmp_path):
    """A spec file and its SQLite tracking store, created beforehand so that a run could be recorded in it."""
    from mritune.platform.spec.config import spec_to_yaml
    from mritune.platform.tracking.trial_runs import ensure_experiment

    spec = tiny_spec(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(spec_to_yaml(spec))
    ensure_experiment(spec.experiment, spec.tracking.uri)
    return spec, path


def _runs(spec) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(spec.tracking.uri)
    return client.search_runs([client.get_experiment_by_name(spec.experiment).experiment_id])


def _assert_one_line_naming(result: subprocess.CompletedProcess, path: str) -> None:
    assert result.returncode == EXIT_USER_ERROR, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and path in lines[0], result.stderr[-2000:]


def test_search_submit_and_resume_refuse_a_bad_spec_before_anything_starts(store, tmp_path):
    """Each command with another of the rules issue 12 moved to parse time (test_config.py checks every rule)."""
    spec, spec_file = store
    (port,) = free_ports(1)  # nothing listens there: submit must fail on the spec, not on the address
    commands = (["search", str(spec_file)], ["submit", str(spec_file), "--address", f"http://127.0.0.1:{port}"],
                ["resume", str(spec_file)])
    for command, (override, path) in zip(commands, BAD_SPECS):
        _assert_one_line_naming(mritune(*command, "--set", override, cwd=tmp_path), path)
    assert _runs(spec) == [] and not Path(spec.storage_path).exists()


def test_resume_refuses_a_search_whose_stored_spec_no_longer_validates(store, tmp_path):
    """A search folder written before a rule existed: resume names the key instead of failing on the cluster."""
    spec, _ = store
    folder = Path(spec.storage_path) / f"{spec.name}-20260101-000000"
    folder.mkdir(parents=True)
    raw = yaml.safe_load((tmp_path / "spec.yaml").read_text())
    raw["scheduler"]["grace_period"] = 9
    (folder / "mritune_search.json").write_text(json.dumps({"spec": raw, "tracking_uri": spec.tracking.uri,
                                                            "experiment_id": "0", "parent_run_id": "x"}))
    _assert_one_line_naming(mritune("resume", spec.name, "--storage-path", spec.storage_path, cwd=tmp_path),
                            "scheduler.grace_period")
    assert _runs(spec) == []


def test_resume_looks_under_the_specs_storage_path(store, tmp_path):
    spec, spec_file = store
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = mritune("resume", str(spec_file), cwd=elsewhere)
    _assert_one_line_naming(result, f"no search named '{spec.name}' under {Path(spec.storage_path).resolve()}")
    from mritune.platform.run.runner import locate_search

    folder = Path(spec.storage_path) / f"{spec.name}-20260101-000000"
    folder.mkdir(parents=True)
    (folder / "mritune_search.json").write_text("{}")
    assert locate_search(str(spec_file)).value == str(folder.resolve())


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    for result in (mritune("--debug", "resume", "no-such-search", cwd=tmp_path),
                   mritune("resume", "no-such-search", cwd=tmp_path, env={**os.environ, "MRITUNE_DEBUG": "1"})):
        assert result.returncode == EXIT_USER_ERROR
        assert "Traceback (most recent call last)" in result.stderr and "MissingInputError" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: no search named 'no-such-search'")


def test_an_error_that_is_not_mritunes_keeps_its_traceback_and_exit_code(capsys):
    import numpy as np

    try:
        np.zeros(-1)  # a library's ValueError: not something mritune raised about the user's input
    except ValueError as exc:
        code = report_error(exc)
    stderr = capsys.readouterr().err
    assert code == EXIT_INTERNAL_ERROR != EXIT_USER_ERROR
    assert "Traceback (most recent call last)" in stderr and "internal error (ValueError)" in stderr


@pytest.mark.parametrize(("setting", "says"), [("epochs=[2", "not valid YAML"), ("epochs='2", "not valid YAML"),
                                               ("=2", "expected key.path=value"), ("epochs", "expected key.path=value")])
def test_search_and_train_refuse_a_bad_set_with_one_line_from_one_parser(store, tmp_path, setting, says):
    """`--set` is parsed in one place (platform/spec/overrides.py) for `search` and `train`: a value that is not valid
    YAML or a setting without key=value is one line naming the setting, exit 2, nothing started."""
    spec, spec_file = store
    search_setting = f"search.{setting}" if not setting.startswith("=") else setting
    search = mritune("search", str(spec_file), "--set", search_setting, cwd=tmp_path)
    train = mritune("train", "classifier", "--data", "synthetic", "--set", setting, cwd=tmp_path)
    for result in (search, train):
        _assert_one_line_naming(result, "--set")
        assert says in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert _runs(spec) == [] and not Path(spec.storage_path).exists()
