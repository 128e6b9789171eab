"""Register the best trial's model and apply the promotion gate.

The best trial is chosen by the search metric among trials that finished every epoch with finite metrics (an
errored, NaN or ASHA-stopped trial is never registered). Its model is logged into its own MLflow run as a pyfunc
(Keras native format inside), registered, and tagged with the search, run, dataset fingerprint and metrics.
Promotion gate: alias ``champion`` moves to the new version only if its gate metric (classifier: test_macro_f1;
DCGAN: swd on held-out images) beats the current champion's on the same dataset fingerprint; when there is no
champion it becomes champion; otherwise — worse, or a champion trained on other data, which cannot be compared —
the new version gets ``challenger``.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from dataclasses import dataclass
from pathlib import Path

from mritune.platform.config import GATE_METRICS, SearchSpec
from mritune.platform.tracking import is_finite_number
from mritune.platform.tracking_runs import trial_run_id

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Registration:
    model_name: str
    version: str
    alias: str  # the alias this version received: champion or challenger
    trial_id: str
    run_id: str
    gate_metric: str
    gate_value: float
    previous_champion: str | None  # version number of the champion before this registration
    reason: str


def best_result(results, *, metric: str, mode: str, epochs: int, gate_metric: str):
    """The best trial that finished every epoch with a finite search metric and gate metric, or None."""
    candidates = []
    for result in results:
        last = result.metrics or {}
        if result.error or result.checkpoint is None:
            continue
        if int(last.get("training_iteration", 0)) < epochs:
            continue
        value, gate_value = last.get(metric), last.get(gate_metric)
        if not (is_finite_number(value) and is_finite_number(gate_value)):
            continue
        candidates.append((value, result))
    if not candidates:
        return None
    pick = max if mode == "max" else min
    return pick(candidates, key=lambda pair: pair[0])[1]


def register_best(*, spec: SearchSpec, results, tracking_uri: str, experiment_id: str, parent_run_id: str,
                  dataset) -> Registration | None:
    gate_metric, gate_mode = GATE_METRICS[spec.task]
    best = best_result(results, metric=spec.metric, mode=spec.mode, epochs=spec.epochs, gate_metric=gate_metric)
    if best is None:
        return None
    trial_id = best.metrics["trial_id"]
    run_id = trial_run_id(tracking_uri, experiment_id, parent_run_id, trial_id)
    if run_id is None:
        return None
    metrics = {k: float(v) for k, v in best.metrics.items() if is_finite_number(v) and not k.startswith(("time_", "timestamp"))}
    with best.checkpoint.as_directory() as folder:
        model_uri = _log_model(spec, Path(folder), run_id, dataset, metrics, tracking_uri)
    return _register(
        spec=spec, model_uri=model_uri, run_id=run_id, trial_id=trial_id, parent_run_id=parent_run_id,
        fingerprint=dataset.fingerprint, metrics=metrics, gate=(gate_metric, gate_mode), tracking_uri=tracking_uri,
    )


def _log_model(spec: SearchSpec, folder: Path, run_id: str, dataset, metrics: dict, tracking_uri: str) -> str:
    """Log the checkpoint's model into the trial's run, leaving the run's status as it was."""
    import mlflow

    from mritune.deploy.model_logging import log_classifier_model, log_generator_model

    state = json.loads((folder / "state.json").read_text())
    metadata = {
        "dataset_fingerprint": dataset.fingerprint,
        "class_names": list(dataset.class_names),
        "image_size": int(state.get("image_size", dataset.image_size)),
        "search": spec.name,
        "metrics": metrics,
        "mritune_version": importlib.metadata.version("mritune"),
    }
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    status = client.get_run(run_id).info.status
    with mlflow.start_run(run_id=run_id):
        if spec.task == "classifier":
            info = log_classifier_model(
                keras_path=str(folder / "model.keras"), image_size=metadata["image_size"],
                class_names=metadata["class_names"], metadata=metadata,
            )
        else:
            info = log_generator_model(
                keras_path=str(folder / "generator.keras"), image_size=metadata["image_size"],
                latent_dim=int(state["latent_dim"]), metadata=metadata,
            )
    client.set_terminated(run_id, status=status)
    return info.model_uri


def _register(*, spec, model_uri, run_id, trial_id, parent_run_id, fingerprint, metrics, gate, tracking_uri):
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    gate_metric, gate_mode = gate
    tags = {
        "search": spec.name,
        "search_run_id": parent_run_id,
        "run_id": run_id,
        "trial_id": trial_id,
        "dataset_fingerprint": fingerprint,
        "gate_metric": gate_metric,
        **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()},
    }
    version = mlflow.register_model(model_uri, spec.model_name, tags=tags).version
    alias, previous, reason = decide_alias(
        client, spec.model_name, fingerprint=fingerprint, value=metrics[gate_metric], metric=gate_metric,
        mode=gate_mode, champion_alias=spec.registry.alias,
    )
    client.set_registered_model_alias(spec.model_name, alias, version)
    client.set_model_version_tag(spec.model_name, version, "promotion", reason)
    return Registration(
        model_name=spec.model_name, version=str(version), alias=alias, trial_id=trial_id, run_id=run_id,
        gate_metric=gate_metric, gate_value=metrics[gate_metric], previous_champion=previous, reason=reason,
    )


def decide_alias(client, model_name: str, *, fingerprint: str, value: float, metric: str, mode: str,
                 champion_alias: str = CHAMPION) -> tuple[str, str | None, str]:
    """(alias for the new version, the current champion's version or None, a one-line reason)."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(model_name, champion_alias)
    except MlflowException:
        return champion_alias, None, f"no {champion_alias} yet"
    if champion.tags.get("dataset_fingerprint") != fingerprint:
        return CHALLENGER, str(champion.version), f"{champion_alias} v{champion.version} was trained on other data"
    current = float(champion.tags.get(f"metric.{metric}", "nan"))
    better = value > current if mode == "max" else value < current
    if math.isnan(current) or better:
        return champion_alias, str(champion.version), f"{metric} {value:.4g} beats v{champion.version}'s {current:.4g}"
    return CHALLENGER, str(champion.version), f"{metric} {value:.4g} does not beat v{champion.version}'s {current:.4g}"
