"""How well the OOD guard separates held-out MRI slices from images the classifier was not trained for, and what it
costs `mritune serve`.

    nice -n 10 python benchmarks/ood_guard.py                  # quick spec data (960 images, 64 px), 8 epochs
    python benchmarks/ood_guard.py --size 32 --epochs 6        # the --fast resolution
    python benchmarks/ood_guard.py --table                     # the docs' tables from the committed JSON

A small CNN is trained as a good quick-search configuration would be (``train_classifier``; synthetic data, seed
0), and the guard is fitted exactly as registration fits it (``deploy/ood_fit.fit_classifier_guard``: training
split, threshold at the validation split's 99th percentile). Then, on images none of that saw:

- ``mri_test``: the held-out test split (goal: at most 2% flagged);
- groups that are not what it was trained on, none downloaded (goal: at least 95% flagged each): ``photos`` (every
  photograph, texture and phantom bundled with scikit-image, read from its file with its colour), ``noise``
  (uniform, Gaussian, smooth, colour), ``constant`` (blank and near-blank), ``text`` (rendered pages),
  ``mri_rotated`` (test slices turned 90°), ``mri_inverted`` (255 - slice), ``mri_zoomed_out`` / ``mri_zoomed_in``
  (the brain at half and at twice its size), ``mri_other_planes`` (sagittal and coronal slices of the MNI152
  template that the synthetic data is rendered from).

Per group: the share the guard flags, and the AUROC against ``mri_test`` of five scores: the maximum softmax
probability, the energy score (Liu et al. 2020), Mahalanobis on the penultimate layer (Lee et al. 2018), the
guard's image-level checks alone, and the whole guard. Then how the checks are scaled before the threshold (the
held-out images split at random 1000 times into a calibrating and a scored half: each check divided by its
validation 99th percentile (shipped), 95th or median; the threshold's percentile read as numpy's default or as
the (n+1)·p-th order statistic (shipped)). Then the serving cost: the same model logged with and
without its guard, pulled and served by two `mritune serve` processes, timed alternately (one 176×208 PNG per
JSON request). Writes ``benchmarks/results/ood_guard.json`` and ``docs/img/ood_guard.png``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform as stdlib_platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "ood_guard.json"
FIGURE = ROOT / "docs" / "img" / "ood_guard.png"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_latency import start_server, stop  # noqa: E402

CONFIG = {"backbone": "small_cnn", "learning_rate": 1e-3, "dense_units": 64, "dropout": 0.1, "batch_size": 32,
          "class_weighting": "balanced", "seed": 0}
METHODS = ("max_softmax", "energy", "mahalanobis", "image_checks", "guard")
GROUP_SIZE = 48
GOAL_MRI = 0.02
GOAL_OOD = 0.95
LATENCY_GOAL = 1.20


# --- the model and its guard --------------------------------------------------------------------------------


def train_model(data, *, size: int, epochs: int, workdir: Path) -> Path:
    import shutil

    from mritune.trainables.classifier.training import train_classifier

    best_folder = workdir / "best"
    best = {"score": -1.0}

    def report(epoch) -> None:  # keep the best validation epoch, as a search registers it
        print(f"  epoch {epoch.epoch}: val macro-F1 {epoch.metrics['val_macro_f1']:.3f}", flush=True)
        if epoch.metrics["val_macro_f1"] > best["score"]:
            best["score"] = epoch.metrics["val_macro_f1"]
            shutil.rmtree(best_folder, ignore_errors=True)
            shutil.copytree(epoch.checkpoint_dir, best_folder)

    train_classifier({**CONFIG, "image_size": size, "epochs": epochs}, data, report,
                     workdir=str(workdir / "epochs"), evaluate_test=False)
    return best_folder / "model.keras"


# --- image groups ---------------------------------------------------------------------------------------------


def photo_group(size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every image file bundled with scikit-image, decoded as predict decodes a file (colour measured)."""
    import skimage

    from mritune.deploy.ood_guard import decode_with_colour

    folder = Path(skimage.__file__).parent / "data"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    decoded = [decode_with_colour(p, size) for p in files]
    return np.stack([d[0] for d in decoded]), np.array([d[1] for d in decoded]), [p.name for p in files]


def noise_group(size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from mritune.deploy.ood_guard import colourfulness_of_array, decode_with_colour

    quarter = GROUP_SIZE // 4
    images, colours = [], []
    for _ in range(quarter):
        images.append(rng.integers(0, 256, (size, size), dtype=np.uint8))
        images.append(np.clip(rng.normal(rng.uniform(60, 190), rng.uniform(10, 60), (size, size)), 0, 255))
        smooth = cv2.resize(rng.uniform(0, 255, (6, 6)), (size, size), interpolation=cv2.INTER_CUBIC)
        images.append(np.clip(smooth, 0, 255))
        colours += [0.0, 0.0, 0.0]
        colour = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        gray, chroma = decode_with_colour(colour, size)
        images.append(gray)
        colours.append(chroma if chroma else colourfulness_of_array(colour))
    return np.stack(images).astype(np.uint8), np.array(colours)


def constant_group(size: int, rng) -> np.ndarray:
    values = np.linspace(0, 255, GROUP_SIZE // 2)
    blank = [np.full((size, size), v) for v in values]
    near = [np.clip(v + rng.normal(0, 1.0, (size, size)), 0, 255) for v in values]
    return np.stack(blank + near).astype(np.uint8)


def text_group(size: int, rng) -> np.ndarray:
    import cv2

    words = ["Patient", "MRI", "report", "axial", "T1", "lorem ipsum", "dementia", "scan 0042", "brain", "slice"]
    images = []
    for index in range(GROUP_SIZE):
        canvas_size = 256
        dark = index % 2 == 1
        canvas = np.full((canvas_size, canvas_size), 0 if dark else 255, dtype=np.uint8)
        for line in range(int(rng.integers(4, 12))):
            text = " ".join(rng.choice(words, size=3))
            y = 20 + line * 22
            cv2.putText(canvas, text, (int(rng.integers(2, 30)), y), cv2.FONT_HERSHEY_SIMPLEX,
                        float(rng.uniform(0.4, 0.7)), 255 if dark else 0, 1, cv2.LINE_AA)
        images.append(cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(images)


def transformed_groups(test: np.ndarray) -> dict[str, np.ndarray]:
    import cv2

    size = test.shape[1]
    half = size // 2
    zoomed_out, zoomed_in = [], []
    for image in test:
        small = cv2.resize(image, (half, half), interpolation=cv2.INTER_AREA)
        canvas = np.zeros_like(image)
        canvas[half // 2 : half // 2 + half, half // 2 : half // 2 + half] = small
        zoomed_out.append(canvas)
        crop = image[size // 4 : size // 4 + half, size // 4 : size // 4 + half]
        zoomed_in.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR))
    rotated = [np.rot90(image, 1 if i % 2 == 0 else -1) for i, image in enumerate(test)]
    return {"mri_rotated": np.ascontiguousarray(np.stack(rotated)), "mri_inverted": 255 - test,
            "mri_zoomed_out": np.stack(zoomed_out), "mri_zoomed_in": np.stack(zoomed_in)}


def other_planes_group(size: int) -> np.ndarray:
    """Sagittal and coronal slices of the MNI152 T1 template (nilearn's wheel), rendered like the axial data."""
    import cv2
    from nilearn import datasets

    volume = datasets.load_mni152_template(resolution=1).get_fdata(dtype=np.float32)
    volume = volume / max(float(np.percentile(volume, 99.5)), 1e-6)
    x_mid, y_mid = volume.shape[0] // 2, volume.shape[1] // 2
    slices = [np.rot90(volume[x_mid + dx]) for dx in range(-30, 31, 5)]  # sagittal
    slices += [np.rot90(volume[:, y_mid + dy]) for dy in range(-40, 41, 7)]  # coronal
    images = []
    for plane in slices:
        side = max(plane.shape)
        canvas = np.zeros((side, side), dtype=np.float32)
        top, left = (side - plane.shape[0]) // 2, (side - plane.shape[1]) // 2
        canvas[top : top + plane.shape[0], left : left + plane.shape[1]] = plane
        images.append(cv2.resize(np.clip(canvas * 230, 0, 255), (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(images).astype(np.uint8)


def build_groups(test: np.ndarray, size: int) -> dict[str, dict]:
    rng = np.random.default_rng(0)
    photos, photo_colour, names = photo_group(size)
    noise, noise_colour = noise_group(size, rng)
    groups = {"mri_test": {"images": test}, "photos": {"images": photos, "colour": photo_colour, "names": names},
              "noise": {"images": noise, "colour": noise_colour}, "constant": {"images": constant_group(size, rng)},
              "text": {"images": text_group(size, rng)}}
    groups.update({name: {"images": images} for name, images in transformed_groups(test).items()})
    groups["mri_other_planes"] = {"images": other_planes_group(size)}
    return groups


# --- scores ---------------------------------------------------------------------------------------------------


def method_scores(guard, features, model, images: np.ndarray, colour: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """Every method's score (higher: more out of distribution) and the guard's flags for one group."""
    from scipy.special import logsumexp

    from mritune.deploy.ood_guard import ImageBatch

    probs, hidden = features(images)
    kernel, bias = (np.asarray(w) for w in model.get_layer("head").layers[-1].get_weights())
    logits = hidden @ kernel + bias
    batch = ImageBatch.of(images, colour)
    verdicts = guard.verdicts(batch, hidden)
    image_only = guard.check_distances(batch, hidden)
    image_only.pop("penultimate")
    rules = np.maximum(batch.colourfulness / guard.colour_limit,
                       guard.min_std / np.maximum(batch.flat.std(axis=1), 1e-6))
    scores = {
        "max_softmax": -probs.max(axis=1),
        "energy": -logsumexp(logits, axis=1),
        "mahalanobis": guard.penultimate.distances(hidden),
        "image_checks": np.maximum(guard.learned_score(image_only) / guard.threshold, rules),
        "guard": verdicts.scores,
    }
    return scores, ~verdicts.in_distribution


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    return float(roc_auc_score(labels, np.r_[negatives, positives]))


def evaluate_groups(guard, model, groups: dict) -> dict:
    from mritune.deploy.ood_fit import PenultimateFeatures

    features = PenultimateFeatures(model)
    scored = {name: method_scores(guard, features, model, g["images"], g.get("colour")) for name, g in groups.items()}
    reference = scored["mri_test"][0]
    rows = {}
    for name, (scores, flagged) in scored.items():
        row = {"n": int(len(flagged)), "flagged": float(flagged.mean()),
               "median_ood_score": float(np.median(scores["guard"]))}
        if name != "mri_test":
            row["auroc"] = {m: auroc(reference[m], scores[m]) for m in METHODS}
        if "names" in groups[name]:
            row["missed"] = [n for n, f in zip(groups[name]["names"], flagged) if not f]
        rows[name] = row
    return rows


# How the calibration is read off the validation split: (each check's scale, how the threshold's 99th percentile
# is estimated). The guard ships "q99 scales, type 6" (deploy/ood_fit.py).
CALIBRATIONS = {
    "q99 scales, type 7 threshold": (99.0, "linear"),
    "q99 scales, type 6 threshold": (99.0, "weibull"),
    "q95 scales, type 6 threshold": (95.0, "weibull"),
    "median scales, type 6 threshold": (50.0, "weibull"),
}


def calibration_study(guard, model, data, groups: dict, *, repeats: int = 1000) -> dict:
    """How the share of held-out MRI flagged, and of rotated and other-plane slices, depends on how the checks'
    scales and the threshold are read off the validation split.

    The validation and test images (both held out) are pooled and split at random into a validation half that
    calibrates and a test half that is scored, ``repeats`` times; the checks' distances do not depend on the
    calibration, so they are computed once. Type 7 is numpy's default percentile (linear between order
    statistics), type 6 the (n+1)·p-th order statistic (Hyndman & Fan 1996).
    """
    from mritune.deploy.ood_fit import PERCENTILE, PenultimateFeatures
    from mritune.deploy.ood_guard import ImageBatch

    features = PenultimateFeatures(model)

    def distances(images: np.ndarray) -> np.ndarray:
        return np.stack(list(guard.check_distances(ImageBatch.of(images), features(images)[1]).values()), axis=1)

    held = distances(np.concatenate([data.x_val, data.x_test]))
    others = {name: distances(groups[name]["images"]) for name in ("mri_rotated", "mri_other_planes")}
    rng = np.random.default_rng(0)
    shares = {name: {"mri_test": [], **{group: [] for group in others}} for name in CALIBRATIONS}
    for _ in range(repeats):
        order = rng.permutation(len(held))
        val, test = held[order[: len(data.x_val)]], held[order[len(data.x_val) :]]
        for name, (scale_percentile, method) in CALIBRATIONS.items():
            scale = np.percentile(val, scale_percentile, axis=0)
            threshold = np.percentile((val / scale).max(axis=1), PERCENTILE, method=method)
            for group, matrix in {"mri_test": test, **others}.items():
                shares[name][group].append(float(((matrix / scale).max(axis=1) > threshold).mean()))
    summary = {name: {group: float(np.mean(v)) for group, v in rows.items()} for name, rows in shares.items()}
    for name, rows in shares.items():
        summary[name]["mri_test_splits_over_goal"] = float(np.mean(np.array(rows["mri_test"]) > GOAL_MRI))
    return {"repeats": repeats, "pooled_images": int(len(held)), "mean_flagged": summary}


# --- serving latency, side by side ------------------------------------------------------------------------------


def serve_latency(keras_path: Path, guard_path: Path, size: int, test_image: np.ndarray, *, requests: int,
                  rounds: int) -> dict:
    """p50 of `mritune serve` for the same model with and without its guard, timed in alternating rounds."""
    import cv2
    import requests as http

    image = cv2.resize(test_image, (176, 208), interpolation=cv2.INTER_LINEAR)
    body = {"inputs": {"image": [base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()]}}
    with tempfile.TemporaryDirectory(prefix="mritune-ood-bench-") as tmp:
        folders = register_pair(keras_path, guard_path, size, Path(tmp))
        servers = {arm: start_server(folder) for arm, folder in folders.items()}
        try:
            sessions = {arm: http.Session() for arm in servers}
            latencies = {arm: [] for arm in servers}
            for _ in range(rounds):
                for arm, (_, base) in servers.items():
                    latencies[arm] += _timed(sessions[arm], f"{base}/invocations", body, requests // rounds)
        finally:
            for process, _ in servers.values():
                stop(process)
    p50 = {arm: float(np.percentile(values, 50)) for arm, values in latencies.items()}
    return {"requests_per_arm": len(latencies["guard"]), "rounds": rounds,
            "p50_ms": p50, "p95_ms": {arm: float(np.percentile(v, 95)) for arm, v in latencies.items()},
            "p50_ratio": p50["guard"] / p50["no_guard"]}


def in_process_costs(model, guard, class_names, test_image: np.ndarray, size: int, repeats: int = 300) -> dict:
    """Median milliseconds per single-image call of each step serve runs, without and with the guard (no HTTP)."""
    import cv2

    from mritune.deploy.pyfunc_classifier import ClassifierPredictor

    png = cv2.imencode(".png", cv2.resize(test_image, (176, 208), interpolation=cv2.INTER_LINEAR))[1].tobytes()
    plain = ClassifierPredictor(keras_model=model, image_size=size, class_names=class_names)
    guarded = ClassifierPredictor(keras_model=model, image_size=size, class_names=class_names, guard=guard)
    image, colour = guarded.decode_checked(png)
    steps = {
        "decode (no guard)": lambda: plain.decode_checked(png),
        "decode + colour (guard)": lambda: guarded.decode_checked(png),
        "forward + records (no guard)": lambda: plain.records(*plain.predict_guarded(image[None])),
        "forward + guard + records (guard)": lambda: guarded.records(*guarded.predict_guarded(image[None],
                                                                                           np.array([colour]))),
    }
    times = {name: [] for name in steps}
    for repeat in range(20 + repeats):  # the steps interleaved, so the machine's load drifts alike for all
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            if repeat >= 20:  # the first calls warm up
                times[name].append((time.perf_counter() - started) * 1000)
    costs = {name: float(np.median(values)) for name, values in times.items()}
    without = costs["decode (no guard)"] + costs["forward + records (no guard)"]
    with_guard = costs["decode + colour (guard)"] + costs["forward + guard + records (guard)"]
    return {"median_ms": costs, "ratio": with_guard / without}


def _timed(session, url: str, body: dict, count: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        session.post(url, json=body)
    out = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(url, json=body)
        out.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"request failed: {response.status_code} {response.text[:200]}")
    return out


def register_pair(keras_path: Path, guard_path: Path, size: int, folder: Path) -> dict[str, Path]:
    """Log the model twice (with and without the guard), register both and pull them as `mritune pull` does."""
    import mlflow

    from mritune.deploy.model_logging import log_classifier_model
    from mritune.deploy.registry_client import pull
    from mritune.trainables.data.classes import CLASS_NAMES

    uri = f"sqlite:///{folder}/mlruns.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.MlflowClient().create_experiment("ood-bench", artifact_location=str(folder / "artifacts"))
    pulled = {}
    for arm, guard in (("guard", guard_path), ("no_guard", None)):
        with mlflow.start_run(experiment_id=experiment):
            info = log_classifier_model(keras_path=str(keras_path), image_size=size, class_names=CLASS_NAMES,
                                        metadata={"dataset_fingerprint": "bench"}, guard_path=guard)
        name = f"ood-bench-{arm.replace('_', '-')}"
        version = mlflow.register_model(info.model_uri, name).version
        pull(f"{name}/{version}", out_dir=folder / arm, tracking_uri=uri)
        pulled[arm] = folder / arm
    mlflow.set_tracking_uri(None)
    return pulled


# --- report -----------------------------------------------------------------------------------------------------


def draw_figure(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(report["groups"])
    flagged = [report["groups"][g]["flagged"] for g in groups]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.1, 1.4]})
    colours = ["tab:green" if g == "mri_test" else "tab:red" for g in groups]
    left.barh(groups[::-1], [100 * f for f in flagged[::-1]], color=colours[::-1])
    left.axvline(100 * GOAL_MRI, color="tab:green", ls=":", lw=1)
    left.axvline(100 * GOAL_OOD, color="tab:red", ls=":", lw=1)
    left.set_xlabel("% flagged by the guard")
    left.set_xlim(0, 100)
    others = [g for g in groups if g != "mri_test"]
    width = 0.8 / len(METHODS)
    for k, method in enumerate(METHODS):
        values = [report["groups"][g]["auroc"][method] for g in others]
        right.bar(np.arange(len(others)) + k * width, values, width, label=method)
    right.set_xticks(np.arange(len(others)) + 0.4 - width / 2)
    right.set_xticklabels(others, rotation=35, ha="right", fontsize=8)
    right.set_ylim(0.0, 1.02)
    right.axhline(0.5, color="grey", ls=":", lw=1)
    right.set_ylabel("AUROC vs held-out MRI")
    right.legend(fontsize=7, ncol=len(METHODS), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle(f"OOD guard: small CNN at {report['image_size']} px, synthetic MRI ({report['train_images']} "
                 "training images); dotted: the goals (left), chance (right)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_tables(report: dict) -> None:
    print(f"\nOOD guard, small CNN at {report['image_size']} px (test macro-F1 {report['test_macro_f1']:.2f}), "
          f"validation flagged {report['val_flagged_fraction']:.1%}\n")
    print("| group | n | flagged | goal | " + " | ".join(f"AUROC {m}" for m in METHODS) + " |")
    print("| --- | ---: | ---: | --- |" + " ---: |" * len(METHODS))
    for name, row in report["groups"].items():
        goal = f"≤ {GOAL_MRI:.0%}" if name == "mri_test" else f"≥ {GOAL_OOD:.0%}"
        met = row["flagged"] <= GOAL_MRI if name == "mri_test" else row["flagged"] >= GOAL_OOD
        aurocs = " | ".join(f"{row['auroc'][m]:.3f}" if "auroc" in row else "" for m in METHODS)
        print(f"| {name} | {row['n']} | {row['flagged']:.1%} | {goal} {'met' if met else 'missed'} | {aurocs} |")
    study = report["calibration"]
    print(f"\nCheck scales, {study['repeats']} random val/test splits of the {study['pooled_images']} held-out images: "
          "mean share flagged (and share of splits with more than 2% of held-out MRI flagged)\n")
    print("| calibration on the validation split | mri_test | mri_rotated | mri_other_planes | splits over 2% |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in study["mean_flagged"].items():
        print(f"| {name} | {row['mri_test']:.2%} | {row['mri_rotated']:.1%} | {row['mri_other_planes']:.1%} "
              f"| {row['mri_test_splits_over_goal']:.0%} |")
    costs = report["in_process"]
    print("\nIn-process, one image (median ms): " + ", ".join(f"{k} {v:.2f}" for k, v in costs["median_ms"].items())
          + f"; with / without the guard ×{costs['ratio']:.2f}")
    latency = report.get("latency")
    if latency:
        print(f"\nserve p50: {latency['p50_ms']['no_guard']:.1f} ms without the guard, "
              f"{latency['p50_ms']['guard']:.1f} ms with it: ×{latency['p50_ratio']:.3f} "
              f"(goal ≤ ×{LATENCY_GOAL}, {latency['requests_per_arm']} requests each, {latency['rounds']} "
              "alternating rounds)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=960)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="timed serve requests per arm (0: skip)")
    parser.add_argument("--rounds", type=int, default=20, help="alternations between the two servers")
    parser.add_argument("--table", action="store_true", help="print the committed JSON's tables and redraw")
    args = parser.parse_args(argv)
    if args.table:
        report = json.loads(RESULT.read_text())
        print_tables(report)
        draw_figure(report, FIGURE)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    report = run(args)
    print_tables(report)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    draw_figure(report, FIGURE)
    return 0


def run(args) -> dict:
    from mritune.deploy.model_files import load_keras_model
    from mritune.deploy.ood_fit import fit_classifier_guard
    from mritune.trainables.data.synthetic import load_synthetic
    from mritune.trainables.evaluation import evaluate_checkpoint

    started = time.time()
    data = load_synthetic(n=args.n, size=args.size, seed=0)
    with tempfile.TemporaryDirectory(prefix="mritune-ood-model-") as tmp:
        keras_path = train_model(data, size=args.size, epochs=args.epochs, workdir=Path(tmp))
        model = load_keras_model(keras_path)
        test_f1 = evaluate_checkpoint(keras_path.parent, data, out_dir=tmp).metrics["test_macro_f1"]
        guard = fit_classifier_guard(model, train_images=data.x_train, train_labels=data.y_train,
                                     val_images=data.x_val)
        groups = build_groups(data.x_test, args.size)
        report = {
            "command": "python benchmarks/ood_guard.py " + " ".join(argv_of(args)),
            "machine": f"{stdlib_platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
            "config": CONFIG, "n": args.n, "image_size": args.size, "epochs": args.epochs,
            "train_images": int(len(data.x_train)), "test_macro_f1": float(test_f1),
            "val_flagged_fraction": guard.fitted["val_flagged_fraction"],
            "guard_file_bytes": len(json.dumps(guard.to_json(), separators=(",", ":"))),
            "groups": evaluate_groups(guard, model, groups),
            "calibration": calibration_study(guard, model, data, groups),
            "in_process": in_process_costs(model, guard, data.class_names, data.x_test[0], args.size),
        }
        if args.requests:
            guard_path = guard.save(Path(tmp) / "ood_guard.json")
            report["latency"] = serve_latency(keras_path, guard_path, args.size, data.x_test[0],
                                              requests=args.requests, rounds=args.rounds)
    report["seconds"] = round(time.time() - started, 1)
    return report


def argv_of(args) -> list[str]:
    return [f"--n {args.n}", f"--size {args.size}", f"--epochs {args.epochs}", f"--requests {args.requests}"]


if __name__ == "__main__":
    sys.exit(main())
