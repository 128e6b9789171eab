"""Batch prediction over files, folders and globs; unreadable files are reported per file, the rest predicted.

Every predicted file also gets the OOD guard's ``ood_score``, ``in_distribution`` and ``ood_reason`` (empty for a
model registered without a guard, see ``deploy/ood_guard.py``).
"""

from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mritune.deploy.ood_guard import OOD_COLUMNS, OOD_REASON, OOD_SCORE
from mritune.deploy.pyfunc_classifier import DEFAULT_BATCH_SIZE, PROB_PREFIX, ClassifierPredictor
from mritune.trainables.data.preprocess import IMAGE_SUFFIXES, ImageDecodeError
from mritune.trainables.errors import MissingInputError, UserInputError

OUTPUT_SUFFIXES = (".csv", ".json")


@dataclass(frozen=True)
class ImagePrediction:
    """One input file's outcome: a class, its probabilities and the guard's verdict, or why it could not be read.

    ``in_distribution`` None: the model has no OOD guard (or the file was not read).
    """

    path: str
    predicted_class: str | None = None
    probabilities: tuple[tuple[str, float], ...] = ()
    error: str | None = None
    ood_score: float | None = None
    in_distribution: bool | None = None
    ood_reason: str | None = None

    @property
    def flagged(self) -> bool:
        return self.in_distribution is False

    def record(self) -> dict:
        row = {"path": self.path, "class": self.predicted_class}
        row.update({PROB_PREFIX + name: p for name, p in self.probabilities})
        row.update({OOD_SCORE: self.ood_score, "in_distribution": self.in_distribution, OOD_REASON: self.ood_reason})
        row["error"] = self.error
        return row


def collect_image_paths(inputs: Sequence[str]) -> tuple[list[Path], list[ImagePrediction]]:
    """Expand files, folders (recursively, image suffixes only) and globs; missing inputs become error rows."""
    paths: list[Path] = []
    missing: list[ImagePrediction] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            paths.extend(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            paths.append(path)
        elif glob.has_magic(item):
            matches = [Path(m) for m in sorted(glob.glob(str(path), recursive=True)) if Path(m).is_file()]
            paths.extend(matches)
            if not matches:
                missing.append(ImagePrediction(path=item, error="no files match this pattern"))
        else:
            missing.append(ImagePrediction(path=item, error="no such file or folder"))
    unique = list(dict.fromkeys(paths))  # a file named twice (a folder and a glob) is predicted once
    return unique, missing


def predict_paths(
    paths: Sequence[Path], predictor: ClassifierPredictor, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> list[ImagePrediction]:
    """Decode and predict in batches, keeping the input order; a file that fails to decode gets an error row."""
    if batch_size < 1:
        raise UserInputError(f"batch size must be at least 1, got {batch_size}")
    results: list[ImagePrediction] = []
    for start in range(0, len(paths), batch_size):
        results.extend(_predict_batch(paths[start : start + batch_size], predictor))
    return results


def _predict_batch(paths: Sequence[Path], predictor: ClassifierPredictor) -> list[ImagePrediction]:
    decoded: dict[int, tuple[np.ndarray, float]] = {}
    errors: dict[int, str] = {}
    for index, path in enumerate(paths):
        try:
            decoded[index] = predictor.decode_checked(path)
        except (ImageDecodeError, OSError) as exc:
            errors[index] = str(exc) or type(exc).__name__
    records = []
    if decoded:
        images = np.stack([image for image, _ in decoded.values()])
        probs, verdicts = predictor.predict_guarded(images, np.array([colour for _, colour in decoded.values()]))
        records = predictor.records(probs, verdicts)
    by_index = dict(zip(decoded, records))
    results = []
    for index, path in enumerate(paths):
        if index in errors:
            results.append(ImagePrediction(path=str(path), error=errors[index]))
            continue
        record = by_index[index]
        results.append(
            ImagePrediction(
                path=str(path),
                predicted_class=record["class"],
                probabilities=tuple((name, record[PROB_PREFIX + name]) for name in predictor.class_names),
                ood_score=record[OOD_SCORE], in_distribution=record["in_distribution"], ood_reason=record[OOD_REASON],
            )
        )
    return results


def predictions_text(predictions: Iterable[ImagePrediction], *, class_names: Sequence[str], fmt: str) -> str:
    """Render predictions as ``csv`` or ``json`` (the same flat columns: path, class, prob_<Class>..., ood_score,
    in_distribution, ood_reason, error)."""
    records = [p.record() for p in predictions]
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt != "csv":
        raise UserInputError(f"unknown output format {fmt!r}; use csv or json")
    columns = ["path", "class"] + [PROB_PREFIX + c for c in class_names] + list(OOD_COLUMNS) + ["error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def output_format(out: Path) -> str:
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserInputError(f"--out {out} must end in .csv or .json")
    return out.suffix.lower().lstrip(".")


def run_predict(
    inputs: Sequence[str],
    *,
    model: str,
    out: Path | None = None,
    tracking_uri: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[ImagePrediction]:
    """The `mritune predict` command: load the model once, predict every readable image, write csv/json.

    Unreadable images are not an error: they come back as predictions carrying an ``error`` and are listed in the
    output.

    Args:
        inputs: Image files and folders (searched for images).
        model: A registry reference (``mritune-classifier@champion``) or a folder written by ``mritune pull``.
        out: A ``.csv`` or ``.json`` file to write; None prints CSV on stdout.
        tracking_uri: The MLflow store; None: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db``.
        batch_size: Images per model call.

    Returns:
        One prediction per image found (class probabilities and the predicted class, or the error).

    Raises:
        ValueError: ``out`` is not ``.csv``/``.json``, ``batch_size`` < 1, or the model is not a classifier.
        FileNotFoundError: No image among ``inputs``, or the model (or its tracking store) cannot be found.
        TrackingServerUnreachable: An http(s) tracking server does not answer.
        UnsafeModelError: The model would need pickle to load.

    Example:
        >>> run_predict(["scans/"], model="mritune-classifier@champion", out=Path("pred.csv"))  # doctest: +SKIP
    """
    from mritune.deploy.registry_client import open_model

    fmt = output_format(out) if out is not None else "csv"  # checked before the slow model load
    paths, missing = collect_image_paths(inputs)
    if not paths:
        raise MissingInputError(f"no image files found in {', '.join(inputs)}")
    with open_model(model, tracking_uri=tracking_uri) as (folder, _description):
        predictor = ClassifierPredictor.from_folder(folder)
    predictions = missing + predict_paths(paths, predictor, batch_size=batch_size)
    text = predictions_text(predictions, class_names=predictor.class_names, fmt=fmt)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    else:
        print(text, end="")
    return predictions
