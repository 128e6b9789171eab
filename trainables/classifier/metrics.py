"""Classification metrics computed with scikit-learn, and the end-of-training plots and report as files.

Metric names follow docs/architecture.md ("Names everyone shares"): ``<prefix>_loss``, ``_accuracy``,
``_macro_f1``, ``_weighted_f1``, ``_auc`` (macro one-vs-rest ROC AUC) and ``_f1_<Class>`` for each class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], *, prefix: str
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    labels = list(range(len(class_names)))
    y_pred = probs.argmax(axis=1)
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    metrics = {
        f"{prefix}_loss": float(log_loss(y_true, np.clip(probs, 1e-7, 1.0), labels=labels)),
        f"{prefix}_accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}_macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        f"{prefix}_weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        f"{prefix}_auc": macro_ovr_auc(y_true, probs),
    }
    metrics.update({f"{prefix}_f1_{name}": float(score) for name, score in zip(class_names, per_class)})
    return metrics


def macro_ovr_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes present in ``y_true``.

    A class with no example in the split (the rare ModerateDemented class often has none in a small validation
    split) has no defined ROC curve; sklearn's multi-class AUC then refuses the whole split, so the macro mean
    is taken over the classes that have both positives and negatives. With fewer than two classes present it
    is 0.5 (chance), never NaN.
    """
    from sklearn.metrics import roc_auc_score

    scores = [
        roc_auc_score(y_true == c, probs[:, c])
        for c in range(probs.shape[1])
        if 0 < int((y_true == c).sum()) < len(y_true)
    ]
    return float(np.mean(scores)) if scores else 0.5


def write_classification_artifacts(
    y_true: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], out_dir: str | Path
) -> dict[str, str]:
    """Write confusion_matrix.png, roc_curves.png, classification_report.txt/.json; return name -> path."""
    from sklearn.metrics import classification_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(range(len(class_names)))
    y_pred = probs.argmax(axis=1)
    kwargs = dict(labels=labels, target_names=list(class_names), zero_division=0)
    paths = {
        "confusion_matrix": out / "confusion_matrix.png",
        "roc_curves": out / "roc_curves.png",
        "classification_report": out / "classification_report.txt",
        "classification_report_json": out / "classification_report.json",
    }
    _plot_confusion_matrix(y_true, y_pred, class_names, paths["confusion_matrix"])
    _plot_roc_curves(y_true, probs, class_names, paths["roc_curves"])
    paths["classification_report"].write_text(classification_report(y_true, y_pred, digits=4, **kwargs))
    report = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    paths["classification_report_json"].write_text(json.dumps(report, indent=2))
    return {name: str(path) for name, path in paths.items()}


def _figure(width: float, height: float):
    # The object-oriented API (no pyplot): no global state, safe in Ray worker threads, no GUI backend needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _plot_confusion_matrix(y_true, y_pred, class_names, path: Path) -> None:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(class_names))))
    figure = _figure(6, 5)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=30, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(col, row, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    figure.savefig(path)


def _plot_roc_curves(y_true, probs, class_names, path: Path) -> None:
    from sklearn.metrics import auc, roc_curve

    figure = _figure(6, 5)
    axes = figure.add_subplot()
    for index, name in enumerate(class_names):
        positives = y_true == index
        if not 0 < positives.sum() < len(y_true):
            continue  # no ROC curve for a class absent from (or alone in) the split
        fpr, tpr, _ = roc_curve(positives, probs[:, index])
        axes.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC curves (one vs rest)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
