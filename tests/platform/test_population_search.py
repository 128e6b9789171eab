"""PBT and PB2 searches on a real local Ray with a real MLflow store: exploits happen, the copying trial goes on
from the copied checkpoint with the new values, and the lineage is on the trial runs and in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mritune.platform.run.runner import run_search
from mritune.platform.tracking.lineage import BEST_SCHEDULE_ARTIFACT, LINEAGE_ARTIFACT, read_exploits
from mritune.platform.tracking.tags import CLONED_FROM_TAG, EXPLOITS_TAG, TRIAL_ID_TAG
from mritune.trainables.schedule import SCHEDULE_FILE, parse_schedule
from tests.platform.search_helpers import child_runs, tiny_spec

# Two trials, one population, compared at the same epoch (synch): at every epoch but the last the worse one copies
# the better one, so 3 epochs make 2 copies whatever the scores. (Asynchronously, each trial is compared when it
# reports, its fresh score against the other's older one, and with improving scores it is usually the better.)
_POPULATION = ("search.algorithm=random", "search.options={}", "search.max_concurrent=null", "search.num_samples=2",
               "registry.enabled=false")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MRITUNE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mritune-cache"))
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


def test_pbt_copies_a_trial_and_records_its_lineage_in_mlflow_and_the_report(local_ray, tmp_path):
    from mlflow.tracking import MlflowClient

    spec = tiny_spec(tmp_path, overrides=(*_POPULATION, "scheduler={name: pbt, max_t: 3, perturbation_interval: 1, "
                                                        "quantile_fraction: 0.5, resample_probability: 0.0, "
                                                        "synch: true}"))
    assert spec.perturbed == ("learning_rate",), "dense_units (architecture) is drawn once and copied"
    outcome = run_search(spec)
    client = MlflowClient(outcome.tracking_uri)
    runs = {run.data.tags[TRIAL_ID_TAG]: run for run in child_runs(client, outcome.experiment_id,
                                                                   outcome.parent_run_id)}
    assert len(runs) == 2 and {run.info.status for run in runs.values()} == {"FINISHED"}
    events = [(trial_id, event) for trial_id, run in runs.items() for event in read_exploits(run.data.tags)]
    assert sorted(event.epoch for _, event in events) == [1, 2], "one copy per synchronous round"
    for trial_id, event in events:
        run = runs[trial_id]
        assert event.trial_id == trial_id and event.source_trial_id in runs and event.source_trial_id != trial_id
        assert event.source_epoch == event.epoch, "synchronous: the copied checkpoint is of the same epoch"
        # resample_probability 0: the copied rate times 0.8 or 1.2, clipped into the space's [1e-3, 1e-2].
        copied, new = event.copied["learning_rate"], event.new["learning_rate"]
        assert new == pytest.approx(min(max(copied * 0.8, 1e-3), 1e-2)) or \
            new == pytest.approx(min(max(copied * 1.2, 1e-3), 1e-2))
        # The trial's process ran with the new rate from the epoch after the copied checkpoint's.
        after = sorted((m for m in client.get_metric_history(run.info.run_id, "hp/learning_rate")
                        if m.step == event.source_epoch + 1 and m.timestamp / 1000.0 >= event.time),
                       key=lambda m: m.timestamp)
        assert after and after[0].value == pytest.approx(new)
    last_trial, last = events[-1]
    tags = runs[last_trial].data.tags
    assert int(tags[EXPLOITS_TAG]) == sum(1 for t, _ in events if t == last_trial)
    assert tags[CLONED_FROM_TAG] == read_exploits(tags)[-1].source_trial_id
    document = json.loads(Path(client.download_artifacts(runs[last_trial].info.run_id, LINEAGE_ARTIFACT,
                                                         str(tmp_path))).read_text())
    assert [e["source_epoch"] for e in document["exploits"]] == [e.source_epoch for e in read_exploits(tags)]
    _assert_checkpoints_carry_the_schedule(Path(outcome.experiment_path), events)

    # The best trial's schedule beside best_config.yaml; the table's config is the one in force at its best epoch.
    best = json.loads(Path(client.download_artifacts(outcome.parent_run_id, BEST_SCHEDULE_ARTIFACT,
                                                     str(tmp_path))).read_text())
    top = outcome.table[0]
    assert (best["trial_id"], best["epoch"]) == (top["trial_id"], top["best_epoch"])
    assert top["config.learning_rate"] == pytest.approx(best["segments"][-1]["config"]["learning_rate"])

    page = Path(outcome.report).read_text()
    assert "class='lineage'" in page and last.source_trial_id in page
    assert "mritune.pbt" not in page  # the table shows the lineage, not the raw tags


def _assert_checkpoints_carry_the_schedule(experiment: Path, events, *, architecture: str = "dense_units",
                                           key: str = "learning_rate") -> Path:
    """Some checkpoint of each copying trial holds the copied trial's schedule and then its own segment from the
    copied epoch on, with the new value and the copied trial's ``architecture`` value (drawn once, never perturbed).

    Only each trial's last copy is certain to have such a checkpoint: Ray numbers a restored trial's checkpoints
    on from the copied one's, so a trial that copies twice writes over the checkpoints of its first copy.
    """
    schedules = {path.parent: parse_schedule(path.read_bytes()) for path in experiment.rglob(SCHEDULE_FILE)}
    last_copies = {trial_id: event for trial_id, event in sorted(events, key=lambda pair: pair[1].epoch)}
    for trial_id, event in last_copies.items():
        matching = [(folder, s) for folder, s in schedules.items() if len(s) >= 2 and s[-1].trial_id == trial_id
                    and s[-1].from_epoch == event.source_epoch + 1
                    and s[-1].config[key] == pytest.approx(event.new[key])]
        assert matching, f"no checkpoint of {trial_id} continues {event.source_trial_id}'s epoch {event.source_epoch}"
        folder, schedule = matching[0]
        assert schedule[-2].trial_id == event.source_trial_id
        assert {segment.config[architecture] for segment in schedule} == {schedule[0].config[architecture]}
    return folder


def test_pb2_search_perturbs_ranges_keeps_choices_and_its_checkpoints_replay(local_ray, tmp_path):
    """The DCGAN under PB2: its GP picks the new lr_g within the space's bounds, the choice (batch_size) is drawn
    once and travels with the weights; a re-run of a copying trial's checkpoint replays its schedule's stages.

    One round (max_t 2): every round restarts both trials' processes, and the PBT test above covers two rounds."""
    from mlflow.tracking import MlflowClient

    spec = tiny_spec(tmp_path, task="dcgan", overrides=(
        *_POPULATION, "search.space={lr_g: {loguniform: [1.0e-4, 1.0e-3]}, batch_size: {choice: [16, 32]}}",
        "scheduler={name: pb2, max_t: 2, perturbation_interval: 1, quantile_fraction: 0.5, synch: true}",
        "trainable={image_size: 32, base_filters: 8, latent_dim: 16}"))
    assert spec.perturbed == ("lr_g",), "pb2 perturbs ranges only; the batch_size choice stays fixed"
    outcome = run_search(spec)
    client = MlflowClient(outcome.tracking_uri)
    runs = {run.data.tags[TRIAL_ID_TAG]: run for run in child_runs(client, outcome.experiment_id,
                                                                   outcome.parent_run_id)}
    events = [(trial_id, event) for trial_id, run in runs.items() for event in read_exploits(run.data.tags)]
    assert [event.epoch for _, event in events] == [1], "one synchronous round: the worse trial copies once"
    for _, event in events:
        assert set(event.new) == {"lr_g"} and 1e-4 <= event.new["lr_g"] <= 1e-3
        assert event.operations == {}, "PB2 chooses values, it does not scale them"
    schedule = _assert_checkpoints_carry_the_schedule(Path(outcome.experiment_path), events,
                                                      architecture="batch_size", key="lr_g")
    assert "class='lineage'" in Path(outcome.report).read_text()
    _assert_a_rerun_replays(schedule)


def _assert_a_rerun_replays(checkpoint: Path) -> None:
    """The re-run's stages, read from the checkpoint as Tune stores it (platform/registry/rerun.schedule_stages)."""
    from ray import tune

    from mritune.platform.registry.rerun import schedule_stages
    from mritune.platform.tracking.ranking import TrialScore

    segments = parse_schedule((checkpoint / SCHEDULE_FILE).read_bytes())
    epoch = json.loads((checkpoint / "state.json").read_text())["epoch"]
    score = TrialScore(trial_id=segments[-1].trial_id, status="OK", epochs=epoch, value=1.0, epoch=epoch,
                       checkpoint=tune.Checkpoint.from_directory(str(checkpoint)))
    stages = schedule_stages(score, seed=5)
    assert stages[-1].until_epoch == epoch and all(stage.config["seed"] == 5 for stage in stages)
    assert stages[-1].config["lr_g"] == pytest.approx(segments[-1].config["lr_g"])
    assert [stage.until_epoch for stage in stages] == sorted({stage.until_epoch for stage in stages})
    assert {stage.config["epochs"] for stage in stages} == {2}, "every stage keeps the trials' horizon (max_t)"
