"""The model-based searchers at many observations: suggest() latency, subset choice, and driver-loop stalls.

    python benchmarks/searcher_scale.py latency             # suggest() at 100, 300, 1000 observations (6-D)
    python benchmarks/searcher_scale.py selection           # regret when the fit cap bites: which subset
    python benchmarks/searcher_scale.py fits                # regret at 100: background vs inline fits, bayes_opt v0
    python benchmarks/searcher_scale.py mobster-fits        # the same for MobsterSearch (simulated ASHA)
    python benchmarks/searcher_scale.py stalls              # Ray Tune's driver loop at 1000 observations
    python benchmarks/searcher_scale.py report              # the tables again from benchmarks/results/

``latency``: each searcher holding n random Hartmann6 observations (mobster: n rung results of Hartmann6
learning curves, as ASHA leaves them), ``--repeats`` timed suggestions after a warm-up one, 3 of every 4 seeing
running trials. Variants side by side: ``exact`` (every observation fitted, hyperparameters refitted inside
suggest(): the searchers before issue 25), ``subset`` (at most ``max_fit_points``, best plus a spread, fitted
inline) and ``background`` (the same subset, hyperparameters refitted on a background thread: the default);
for gpyopt also a sparse GP (GPy's inducing points, ``--inducing``) and the two other subset selections.
For ``background`` the time is what suggest() costs the caller; the background fits' own durations are listed.

``selection``: regret after ``--evals`` evaluations with 4 simulated workers (suggest 4, then finish the oldest,
always 3 running), fits inline so every run is reproducible, with the fit capped at ``--cap`` observations so the
subset matters: exact GP vs best_and_spread vs random vs trust_region vs a sparse GP, on the four functions.

``stalls``: a real ``Tuner.fit`` whose searcher already holds 1000 Hartmann6 observations, 16 trials at a time
(0.1 CPU each), each trial one 0.3 s "epoch"; a Tune callback timestamps every driver-loop step. A stall is a
gap between steps; the table shows the longest, the 99th percentile, how many exceed 0.5 s and 1 s, and how long
suggest() took, inline vs background.

Each writes ``benchmarks/results/searcher_scale_<part>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from functions import FUNCTIONS  # noqa: E402

from mritune.search.fit_subset import SELECTIONS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SEARCHERS = ("gpyopt", "bayesopt", "mobster")
VARIANTS = ("exact", "subset", "background")
GPYOPT_EXTRA = ("sparse", "random", "trust_region")  # other ways to bound the fit, gpyopt only


# ------------------------------------------------------------------------------------------------- searchers


def make_searcher(name: str, variant: str, *, seed: int, function: str = "hartmann6", cap: int | None = None):
    """A searcher (``name`` in SEARCHERS) over ``function``'s space, configured as ``variant``; ``sparse`` is an
    exact-fit gpyopt meant to run inside ``sparse_gp()``."""
    from mritune.search.factory import build_searcher

    options = {"model_fit": "background" if variant == "background" else "inline"}
    if variant in ("exact", "sparse"):
        options["max_fit_points"] = None if name != "mobster" else 10**6
    elif cap is not None:
        options["max_fit_points"] = cap
    if name == "mobster":
        options.update(max_t=27, grace_period=1, reduction_factor=3)
    searcher = build_searcher(name, metric="f", mode="min", seed=seed, **options)
    searcher.set_search_properties(None, None, FUNCTIONS[function].tune_space())
    selection, _, share = variant.partition("@")
    if selection in SELECTIONS and selection != "best_and_spread" or share:
        searcher._fit_subset = dataclasses.replace(searcher._fit_subset, selection=selection,
                                                   best_share=float(share or searcher._fit_subset.best_share))
    return searcher


@contextlib.contextmanager
def sparse_gp(inducing: int):
    """GPyOptSearch fits GPy's SparseGPRegression inside, with ``inducing`` inducing inputs kept at a random subset
    of the observations (GPyOpt's ``sparse=True`` also optimizes their 6 x ``inducing`` coordinates, which cost
    40 s a fit at 110 observations here)."""
    import mritune.search.gpyopt_model as gpyopt_model

    exact = gpyopt_model.gp_model

    def sparse_model(X, Y, start, settings):
        if len(X) <= inducing:
            return exact(X, Y, start, settings)
        import GPy

        model = exact(X[:2], Y[:2], None, settings)  # GPyOpt's wrapper, its kernel and bounds
        kernel = model.model.kern.copy()
        model.sparse, model.num_inducing = True, inducing
        Z = X[np.random.default_rng(len(X)).choice(len(X), size=inducing, replace=False)]
        model.model = GPy.models.SparseGPRegression(X, Y, kernel=kernel, Z=Z)
        model.model.inducing_inputs.fix()
        gpyopt_model.bound_hyperparameters(model.model, start)
        return model

    gpyopt_model.gp_model = sparse_model
    try:
        yield
    finally:
        gpyopt_model.gp_model = exact


def fill(searcher, name: str, n_obs: int, seed: int) -> None:
    """n random Hartmann6 observations (mobster: n rung results of its learning curves at levels 1/3/9/27)."""
    from suggest_overhead import add_rung_results

    function = FUNCTIONS["hartmann6"]
    rng = np.random.default_rng(seed)
    if name != "mobster":
        for _ in range(n_obs):
            config = {f"x{j}": float(v) for j, v in enumerate(rng.random(6))}
            searcher.add_evaluated_point(config, function(config))
        return
    add_rung_results(searcher, n_obs, rng)


# ---------------------------------------------------------------------------------------------------- latency


def time_suggestions(name: str, variant: str, n_obs: int, repeats: int, inducing: int) -> dict:
    with sparse_gp(inducing) if variant == "sparse" else contextlib.nullcontext():
        return _time_suggestions(name, variant, n_obs, repeats)


def _time_suggestions(name: str, variant: str, n_obs: int, repeats: int) -> dict:
    searcher = make_searcher(name, variant, seed=0)
    fill(searcher, name, n_obs, seed=0)
    searcher._n_suggested = 10**6  # past the random initial design: every timed call uses the model
    searcher.suggest("warmup")  # imports, and the first (inline) fit when there is no earlier one
    fits = getattr(searcher, "fits", None)
    walls, cpus = [], []
    for i in range(repeats):
        start, cpu = time.perf_counter(), time.thread_time()
        searcher.suggest(f"t{i}")
        walls.append(time.perf_counter() - start), cpus.append(time.thread_time() - cpu)
        if i % 4 == 3:  # at most 3 running trials, like 4 workers
            for trial_id in list(searcher._log.pending):
                searcher.on_trial_complete(trial_id, {"f": 0.0, "training_iteration": 27})
    row = {"searcher": name, "variant": variant, "observations": n_obs, "wall_s": walls, "thread_cpu_s": cpus}
    if fits is not None:
        fits.wait()
        row["fits"] = dict(fits.counts)
        row["fit_s"] = list(fits.durations)
    return row


def latency(args: argparse.Namespace) -> None:
    """Rows are saved as they are measured (an interrupted run keeps them; a row measured again replaces its own)."""
    sizes = [int(s) for s in args.sizes.split(",")]
    path = RESULTS / "searcher_scale_latency.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    wanted = None if args.variants == ",".join(SELECTION_VARIANTS) else set(args.variants.split(","))
    for name in args.searchers.split(","):
        for variant in list(VARIANTS) + (list(GPYOPT_EXTRA) if name == "gpyopt" else []):
            if wanted is not None and variant not in wanted:
                continue
            for n_obs in sizes:
                row = time_suggestions(name, variant, n_obs, args.repeats, args.inducing)
                rows = [r for r in rows if (r["searcher"], r["variant"], r["observations"]) != (name, variant, n_obs)]
                rows.append(row)
                _print_latency(row)
                _write("latency", {"repeats": args.repeats, "inducing": args.inducing, "rows": rows,
                                   "load_average": os.getloadavg()})
    print(latency_table(rows))


def _print_latency(row: dict) -> None:
    fit = f", background fits median {np.median(row['fit_s']):.2f}s" if row.get("fit_s") else ""
    print(f"{row['searcher']:9s} {row['variant']:12s} n={row['observations']:5d}: median "
          f"{np.median(row['wall_s']):.3f}s (cpu {np.median(row['thread_cpu_s']):.3f}s) max "
          f"{np.max(row['wall_s']):.3f}s{fit} {row.get('fits', '')}", flush=True)


def latency_table(rows: list[dict]) -> str:
    """Median (max) suggest() seconds: wall, and the calling thread's CPU (what it costs on an idle machine)."""
    sizes = sorted({r["observations"] for r in rows})
    lines = ["| searcher | fit | " + " | ".join(f"n={n}: wall median (max) / thread CPU median s" for n in sizes)
             + " | background fit at n=1000: median s |", "|---" * (len(sizes) + 3) + "|"]
    keys = list(dict.fromkeys((r["searcher"], r["variant"]) for r in rows))
    for name, variant in keys:
        cells, fit_cell = [], "-"
        for n in sizes:
            row = next((r for r in rows if (r["searcher"], r["variant"], r["observations"]) == (name, variant, n)),
                       None)
            if row is None:
                cells.append("-")
                continue
            cells.append(f"{np.median(row['wall_s']):.3f} ({np.max(row['wall_s']):.2f}) / "
                         f"{np.median(row['thread_cpu_s']):.3f}")
            if variant == "background" and row.get("fit_s") and n == max(sizes):
                fit_cell = f"{np.median(row['fit_s']):.2f}"
        lines.append(f"| {name} | {variant} | " + " | ".join(cells) + f" | {fit_cell} |")
    return "\n".join(lines)


def report(args: argparse.Namespace) -> None:
    """Every table again from benchmarks/results/searcher_scale_*.json."""
    latency_file = RESULTS / "searcher_scale_latency.json"
    if latency_file.exists():
        print(latency_table(json.loads(latency_file.read_text())["rows"]), "\n")
    for raw in sorted(RESULTS.glob("searcher_scale_selection_*.raw.json")) + [RESULTS / "searcher_scale_fits.raw.json"]:
        if raw.exists():
            print(raw.name)
            selection_report(raw)
            print()
    stalls_file = RESULTS / "searcher_scale_stalls.json"
    if stalls_file.exists():
        print(stalls_table(json.loads(stalls_file.read_text())["rows"]))


# -------------------------------------------------------------------------------------------------- selection

# A selection may name its best share: "best_and_spread@0.5".
SELECTION_VARIANTS = ("exact", "best_and_spread", "best_and_random", "random", "trust_region", "sparse")


def run_selection(function: str, searcher_name: str, variant: str, seed: int, evals: int, cap: int | None,
                  workers: int = 4) -> dict:
    """Regret curve of one simulated asynchronous run: ``workers`` trials out at a time, the oldest finishes.

    Variants: a selection (``best_and_spread``, ...) or ``exact``/``sparse`` with inline fits at ``cap``; or, at
    the default cap, ``inline``, ``background`` (the default searcher) and ``v0`` (BayesOptSearch before issue 25).
    """
    fn = FUNCTIONS[function]
    if variant == "v0":
        searcher = _v0_bayesopt(seed)
        searcher.set_search_properties(None, None, fn.tune_space())
    else:
        kind = {"best_and_spread": "subset", "inline": "subset"}.get(variant, variant)
        searcher = make_searcher(searcher_name, kind, seed=seed, function=function, cap=cap)
    start = time.process_time()
    with sparse_gp(cap) if variant == "sparse" else contextlib.nullcontext():
        values = _simulate(searcher, fn, evals, workers)
    regrets = np.minimum.accumulate(np.array(values) - fn.optimum).tolist()
    return {"function": function, "searcher": searcher_name, "variant": variant, "seed": seed, "cap": cap,
            "cpu_s": time.process_time() - start, "regret_curve": regrets}


def _v0_bayesopt(seed: int):
    from search_quality import make_searcher as quality_searcher

    return quality_searcher("bayesopt_v0", seed)


def _simulate(searcher, fn, evals: int, workers: int) -> list[float]:
    from collections import deque

    running, values, issued = deque(), [], 0
    while len(values) < evals:
        while len(running) < workers and issued < evals:
            running.append((f"t{issued}", searcher.suggest(f"t{issued}")))
            issued += 1
        trial_id, config = running.popleft()
        value = fn(config)
        searcher.on_trial_complete(trial_id, {"f": value})
        values.append(value)
    return values


def selection(args: argparse.Namespace) -> None:
    part = "fits" if args.part == "fits" else f"selection_{args.evals}_{args.cap}"
    out = RESULTS / f"searcher_scale_{part}.raw.json"
    cap = None if args.part == "fits" else args.cap
    done = set()
    if out.exists():
        done = {(r["function"], r["searcher"], r["variant"], r["seed"]) for r in map(json.loads, out.open())}
    variants = args.variants.split(",")
    for seed in range(args.seeds):
        for function in args.functions.split(","):
            for name in args.searchers.split(","):
                for variant in variants:
                    if (function, name, variant, seed) in done or (variant == "sparse" and name != "gpyopt") \
                            or (variant == "v0" and name != "bayesopt"):
                        continue
                    row = run_selection(function, name, variant, seed, args.evals, cap)
                    with out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(f"{function:9s} {name:8s} {variant:15s} seed {seed}: regret {row['regret_curve'][-1]:.4g} "
                          f"({row['cpu_s']:.0f} s cpu)", flush=True)
    selection_report(out)


def selection_report(raw: Path) -> str:
    rows = [json.loads(line) for line in raw.open()]
    part = raw.name.removeprefix("searcher_scale_").removesuffix(".raw.json")
    summary = {}
    for row in rows:
        key = f"{row['searcher']}/{row['variant']}/{row['function']}"
        summary.setdefault(key, []).append(row["regret_curve"][-1])
    _write(part, {"cap": rows[0]["cap"], "evals": len(rows[0]["regret_curve"]),
                         "median_final_regret": {k: float(np.median(v)) for k, v in summary.items()},
                         "seeds": {k: len(v) for k, v in summary.items()}})
    functions = list(dict.fromkeys(r["function"] for r in rows))
    keys = list(dict.fromkeys((r["searcher"], r["variant"]) for r in rows))
    lines = ["| searcher | fit | " + " | ".join(f"{f} median regret (/ baseline)" for f in functions)
             + " | baseline | seeds |", "|---" * (len(functions) + 4) + "|"]
    for name, variant in keys:
        # The before-issue-25 searcher where it is here: exact, else v0, else inline (= before, below 200 points).
        baseline = next(b for b in ("exact", "v0", "inline", variant) if (name, b) in keys)
        cells = []
        for function in functions:
            mine = summary.get(f"{name}/{variant}/{function}")
            base = summary.get(f"{name}/{baseline}/{function}")
            if not mine:
                cells.append("-")
                continue
            ratio = f" ({np.median(mine) / max(np.median(base), 1e-12):.2f})" if base else ""
            cells.append(f"{np.median(mine):.3g}{ratio}")
        seeds = min(len(summary.get(f"{name}/{variant}/{f}", [])) for f in functions)
        lines.append(f"| {name} | {variant} | " + " | ".join(cells) + f" | {baseline} | {seeds} |")
    table = "\n".join(lines)
    print(table)
    return table


# ------------------------------------------------------------------------------------------------------- fits


def fits(args: argparse.Namespace) -> None:
    """Regret at ``--evals`` (100) observations: background fits against inline ones (gpyopt inline is the searcher
    before issue 25 below 200 observations), and BayesOptSearch against its pre-issue-25 self (``v0``)."""
    if args.variants == ",".join(SELECTION_VARIANTS):
        args.variants = "inline,background,v0"
    selection(args)


def mobster_fits(args: argparse.Namespace) -> None:
    """MobsterSearch with background against inline fits on multifidelity.py's simulated ASHA (same budget)."""
    import multifidelity

    out = RESULTS / "searcher_scale_mobster_fits.raw.json"
    done = {(r["function"], r["method"], r["seed"]) for r in map(json.loads, out.open())} if out.exists() else set()
    for seed in range(args.seeds):
        for function in args.functions.split(","):
            for method in ("mobster_joint", "mobster_joint_inline"):
                if (function, method, seed) in done:
                    continue
                row = multifidelity.run_simulated(function, method, seed, args.budget, 4)
                with out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{function:9s} {method:21s} seed {seed}: regret {row['trace'][-1][2]:.4g}", flush=True)
    rows = [json.loads(line) for line in out.open()]
    summary = {}
    for row in rows:
        summary.setdefault(f"{row['method']}/{row['function']}", []).append(row["trace"][-1][2])
    medians = {k: float(np.median(v)) for k, v in summary.items()}
    _write("mobster_fits", {"budget": rows[0]["budget"], "median_final_regret": medians,
                            "seeds": {k: len(v) for k, v in summary.items()}})
    for function in args.functions.split(","):
        bg, inline = medians.get(f"mobster_joint/{function}"), medians.get(f"mobster_joint_inline/{function}")
        if bg is not None and inline is not None:
            print(f"| mobster | {function} | background {bg:.3g} | inline {inline:.3g} | ratio {bg / inline:.2f} |")


# ----------------------------------------------------------------------------------------------------- stalls


def stall_trainable(config: dict) -> None:
    """One 0.3 s "epoch" reporting Hartmann6."""
    from ray import tune

    time.sleep(0.3)
    tune.report({"f": FUNCTIONS["hartmann6"](config)})


def stall_curve_trainable(config: dict) -> None:
    """27 "epochs" of 0.1 s along a Hartmann6 learning curve (for mobster under ASHA, which stops most early)."""
    from learning_curves import curve

    from ray import tune

    rng = np.random.default_rng(int(1e6 * config["x0"]))
    for epoch in range(1, 28):
        time.sleep(0.1)
        tune.report({"f": curve("hartmann6", config, epoch, 27, rng)})


def run_stalls(name: str, variant: str, *, observations: int, trials: int, concurrent: int) -> dict:
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from mritune.search.factory import build_scheduler

    searcher = make_searcher(name, variant, seed=0)
    fill(searcher, name, observations, seed=0)
    searcher._n_suggested = 10**6  # past the random design: every suggestion uses the model
    steps: list[tuple[float, float]] = []
    suggest_s: list[float] = []
    untimed = searcher.suggest

    def timed_suggest(trial_id: str):
        started = time.perf_counter()
        try:
            return untimed(trial_id)
        finally:
            suggest_s.append(time.perf_counter() - started)

    searcher.suggest = timed_suggest  # this object is the one Tune's loop calls (the fit counts below show it)

    class StepTimes(tune.Callback):
        def on_step_begin(self, iteration, trials, **info):
            self.begun = time.perf_counter()

        def on_step_end(self, iteration, trials, **info):
            steps.append((self.begun, time.perf_counter()))

    trainable, scheduler = stall_trainable, None
    if name == "mobster":
        trainable = stall_curve_trainable
        scheduler = build_scheduler("asha", max_t=27, grace_period=1, reduction_factor=3, metric="f", mode="min")
    tuner = tune.Tuner(  # the searcher holds the space
        tune.with_resources(trainable, {"cpu": 0.1}),
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrent),
                                    scheduler=scheduler, num_samples=trials, reuse_actors=True),
        run_config=tune.RunConfig(name=f"stalls-{name}-{variant}", storage_path=_storage(), verbose=0,
                                  callbacks=[StepTimes()]),
    )
    started = time.perf_counter()
    tuner.fit()
    wall = time.perf_counter() - started
    searcher.fits.wait()
    durations = np.array([end - begin for begin, end in steps])
    return {"searcher": name, "variant": variant, "observations": observations, "trials": trials,
            "concurrent": concurrent, "wall_s": wall, "steps": len(durations),
            "step_max_s": float(durations.max()), "step_p99_s": float(np.percentile(durations, 99)),
            "steps_over_0_5_s": int((durations > 0.5).sum()), "steps_over_1_s": int((durations > 1.0).sum()),
            "busy_s": float(durations.sum()), "fits": dict(searcher.fits.counts),
            "suggestions": len(suggest_s), "suggest_median_s": float(np.median(suggest_s)),
            "suggest_max_s": float(np.max(suggest_s)), "suggest_total_s": float(np.sum(suggest_s)),
            "fit_s_median": float(np.median(searcher.fits.durations)) if searcher.fits.durations else None}


def _storage() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="mritune-stalls-")


def stalls(args: argparse.Namespace) -> None:
    import os

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # as mritune's searches run: state saved every second
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent)}})
    rows = []
    try:
        for name in args.searchers.split(","):
            for variant in ("subset", "background"):
                rows.append(run_stalls(name, variant, observations=args.observations, trials=args.trials,
                                       concurrent=args.concurrent))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        ray.shutdown()
    _write("stalls", {"args": vars(args), "rows": rows})
    print(stalls_table(rows))


def stalls_table(rows: list[dict]) -> str:
    lines = ["| searcher | fits | trials | wall s | suggest() median / max / total s | longest step s | p99 step s "
             "| steps > 0.5 s | steps > 1 s | fits inline / background / skipped | fit median s |", "|---" * 11 + "|"]
    for r in rows:
        fits = r["fits"]
        fit_s = "-" if r["fit_s_median"] is None else f"{r['fit_s_median']:.2f}"
        lines.append(f"| {r['searcher']} | {'inline' if r['variant'] == 'subset' else 'background'} | {r['trials']} "
                     f"| {r['wall_s']:.0f} | {r['suggest_median_s']:.2f} / {r['suggest_max_s']:.2f} / "
                     f"{r['suggest_total_s']:.0f} | {r['step_max_s']:.2f} | {r['step_p99_s']:.2f} "
                     f"| {r['steps_over_0_5_s']} "
                     f"| {r['steps_over_1_s']} | {fits['inline']} / {fits['background']} / {fits['skipped']} "
                     f"| {fit_s} |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- helpers


def _write(part: str, payload: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"searcher_scale_{part}.json").write_text(json.dumps(payload))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("latency", "selection", "fits", "mobster-fits", "stalls", "report"))
    parser.add_argument("--searchers", default=",".join(SEARCHERS))
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--inducing", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--cap", type=int, default=40, help="selection: max_fit_points, small so the subset bites")
    parser.add_argument("--functions", default="branin,hartmann3,hartmann6,levy4")
    parser.add_argument("--variants", default=",".join(SELECTION_VARIANTS))
    parser.add_argument("--budget", type=int, default=270, help="mobster-fits: epochs per run (multifidelity.py)")
    parser.add_argument("--observations", type=int, default=1000, help="stalls: observations the searcher holds")
    parser.add_argument("--trials", type=int, default=160, help="stalls: trials per Tuner.fit")
    parser.add_argument("--concurrent", type=int, default=16, help="stalls: trials at a time")
    args = parser.parse_args()
    {"latency": latency, "selection": selection, "fits": fits, "mobster-fits": mobster_fits,
     "stalls": stalls, "report": report}[args.part](args)


if __name__ == "__main__":
    main()
