"""Learnability of the quick synthetic datasets: can a good configuration learn them in a quick search's budget?

Writes ``benchmarks/results/learnability.json`` and ``docs/img/learnability.png`` with

- ``floor``: a PCA(64 components of 32x32 downsampled images) + class-balanced logistic regression, fitted on
  train+val, scored on the test split (macro-F1) at the quick sizes: a non-deep baseline the CNN should beat;
- ``majority``: the macro-F1 of always predicting the majority class (NonDemented) on the test split;
- ``curves``: val and test macro-F1 after every epoch for a default good small_cnn configuration at 64 and 128 px.

Run: ``python benchmarks/learnability.py`` (about 4 minutes on 2 CPUs; ``--epochs`` and ``--n`` shorten it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as std_platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOOD_CONFIG = {"backbone": "small_cnn", "learning_rate": 1e-3, "dense_units": 64, "dropout": 0.2,
               "batch_size": 32, "class_weighting": "balanced", "seed": 0}
QUICK_SIZES = ((960, 32), (960, 64))  # (n, px) of `quickstart --fast` and of the quick specs


def pca_lr_floor(data) -> float:
    """Test macro-F1 of PCA(64) + class-balanced logistic regression on 32x32 downsampled images."""
    import cv2
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    def features(images: np.ndarray) -> np.ndarray:
        small = [cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA) for image in images]
        return np.stack(small).reshape(len(images), -1) / 255.0

    x_fit = features(np.concatenate([data.x_train, data.x_val]))
    y_fit = np.concatenate([data.y_train, data.y_val])
    pca = PCA(64, random_state=0).fit(x_fit)
    model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(pca.transform(x_fit), y_fit)
    return float(f1_score(data.y_test, model.predict(pca.transform(features(data.x_test))), average="macro"))


def learning_curve(data, *, size: int, epochs: int) -> dict:
    """Val and test macro-F1 after each epoch (test from each epoch's checkpoint) and the training time."""
    import keras
    from sklearn.metrics import f1_score

    import mritune.trainables.layers  # noqa: F401  (registers the custom layers before loading)
    from mritune.trainables.classifier.training import train_classifier

    val, test = [], []
    x_test = data.x_test[..., None].astype("float32")

    def report(epoch_report) -> None:
        val.append(round(float(epoch_report.metrics["val_macro_f1"]), 4))
        model = keras.saving.load_model(Path(epoch_report.checkpoint_dir) / "model.keras", safe_mode=True)
        predicted = model.predict(x_test, batch_size=64, verbose=0).argmax(axis=1)
        test.append(round(float(f1_score(data.y_test, predicted, average="macro")), 4))

    started = time.perf_counter()
    train_classifier({**GOOD_CONFIG, "image_size": size, "epochs": epochs}, data, report)
    return {"image_size": size, "val_macro_f1": val, "test_macro_f1": test,
            "seconds": round(time.perf_counter() - started, 1)}


def plot(results: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for curve, colour in zip(results["curves"], ("tab:blue", "tab:orange")):
        epochs = np.arange(1, len(curve["val_macro_f1"]) + 1)
        label = f"small_cnn {curve['image_size']} px"
        ax.plot(epochs, curve["test_macro_f1"], "-o", color=colour, label=f"{label}, test")
        ax.plot(epochs, curve["val_macro_f1"], "--", color=colour, alpha=0.6, label=f"{label}, val")
    n = results["curve_n"]
    floor = next(f["test_macro_f1"] for f in results["floor"] if f["n"] == n)
    ax.axhline(floor, color="grey", ls=":", label=f"PCA(64)+LR floor (n={n})")
    ax.axhline(results["majority"]["test_macro_f1"], color="black", ls="-.", label="majority class")
    ax.set(xlabel="epoch", ylabel="macro-F1", ylim=(0, 1), title=f"Learnability of the synthetic data (n={n})")
    ax.legend(fontsize=7, loc="lower center", ncol=3)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)


def main() -> None:
    from mritune.trainables.classifier.evaluation import majority_macro_f1
    from mritune.trainables.data.synthetic import class_counts, load_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=960, help="images for the learning curves")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cache-dir", default=None, help="dataset cache (default: mritune's)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "learnability.json")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "learnability.png")
    args = parser.parse_args()

    results: dict = {"machine": f"{os.cpu_count()} CPUs, {std_platform.machine()}", "config": GOOD_CONFIG,
                     "epochs": args.epochs, "curve_n": args.n, "floor": [], "curves": []}
    for n, size in sorted({*QUICK_SIZES, (args.n, 64)}):
        data = load_synthetic(n=n, size=size, seed=0, cache_dir=args.cache_dir)
        results["floor"].append({"n": n, "size": size, "class_counts": list(class_counts(n)),
                                 "test_counts": np.bincount(data.y_test).tolist(),
                                 "test_macro_f1": round(pca_lr_floor(data), 4)})
    for size in (64, 128):
        data = load_synthetic(n=args.n, size=size, seed=0, cache_dir=args.cache_dir)
        if "majority" not in results:
            majority = majority_macro_f1(data.y_test, len(data.class_names))
            results["majority"] = {"n": args.n, "test_macro_f1": round(majority, 4)}
        results["curves"].append(learning_curve(data, size=size, epochs=args.epochs))
        print(json.dumps(results["curves"][-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.png)
    print(f"wrote {args.out} and {args.png}")


if __name__ == "__main__":
    main()
