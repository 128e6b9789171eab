"""The report's figures, drawn with matplotlib from what ``data`` computes; each function writes one PNG."""

from __future__ import annotations

from pathlib import Path

from mritune.platform.views.search_report import data as d
from mritune.platform.views.search_report.importance import Importance

# One colour per trial outcome, shared by the learning curves and the timeline.
OUTCOME_COLOURS = {d.COMPLETED: "#2b8cbe", d.STOPPED: "#fdae6b", d.FAILED: "#d7301f", d.RUNNING: "#74c476",
                   d.KILLED: "#969696"}
_DPI = 100


def _figure(width: float = 7.0, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return path


def best_so_far_plot(record: d.SearchRecord, path: Path) -> Path:
    """Two panels: best score so far against wall time (every epoch) and against trials (each trial's score)."""
    import matplotlib.pyplot as plt

    figure, (by_time, by_trial) = plt.subplots(1, 2, figsize=(11, 4))
    points = d.best_by_time(record)
    if points:
        by_time.step([p[0] for p in points], [p[1] for p in points], where="post", color="#08519c")
    by_time.set_xlabel("wall time since the search started (s)")
    by_time.set_ylabel(f"best {record.metric} so far")
    rows = d.best_by_trial(record)
    numbers = [row[0] for row in rows]
    by_trial.plot(numbers, [row[1] if row[1] is not None else float("nan") for row in rows], "o",
                  alpha=0.5 if len(rows) <= 200 else 0.3, markersize=6 if len(rows) <= 200 else 2.5,
                  label="trial's score")
    by_trial.step(numbers, [row[2] if row[2] is not None else float("nan") for row in rows], where="post",
                  label="best so far")
    by_trial.set_xlabel("trial (in the order started)")
    by_trial.set_ylabel(record.metric)
    by_trial.legend()
    return _save(figure, path)


def parallel_coordinates_plot(record: d.SearchRecord, path: Path) -> Path:
    """One line per scored trial across the searched hyperparameters' axes: the best ``TOP_TRIALS`` coloured by
    score (the best drawn last, on top), the others faint grey behind them."""
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors
    from matplotlib.collections import LineCollection

    figure, axis = _figure(max(6.0, 2.0 * len(record.space)), 4.5)
    lines = d.parallel_coordinates(record)  # best first
    top, rest = lines[:d.TOP_TRIALS], lines[d.TOP_TRIALS:]
    x = list(range(len(record.space)))
    if rest:
        axis.add_collection(LineCollection([list(zip(x, positions)) for _, positions, _ in rest], colors="#9e9e9e",
                                           alpha=0.18, linewidths=0.6, zorder=1))
        axis.set_title(f"the best {len(top)} of {len(lines)} scored trials in colour, the other {len(rest)} in grey",
                       fontsize=10)
    if top:
        scores = [line[2] for line in top]
        norm = colors.Normalize(min(scores), max(scores) if max(scores) > min(scores) else min(scores) + 1e-9)
        cmap = matplotlib.colormaps["viridis" if record.mode == "max" else "viridis_r"]
        for _, positions, score in reversed(top):
            axis.plot(x, positions, color=cmap(norm(score)), alpha=0.85, linewidth=1.6, zorder=2)
        label = record.metric + (f" (best {len(top)})" if rest else "")
        figure.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=axis, label=label)
    for i, param in enumerate(record.space):
        axis.axvline(i, color="black", linewidth=0.8)
        low, high = _axis_ends(param)
        axis.annotate(low, (i, -0.04), ha="center", va="top", fontsize=8)
        axis.annotate(high, (i, 1.04), ha="center", va="bottom", fontsize=8)
    axis.set_xticks(x, [p.name for p in record.space])
    axis.set_xlim(-0.3, max(len(x) - 0.7, 0.3))
    axis.set_ylim(-0.12, 1.12)
    axis.set_yticks([])
    plt.setp(axis.get_xticklabels(), rotation=15)
    return _save(figure, path)


def _axis_ends(param: d.SpaceParam) -> tuple[str, str]:
    if param.kind in ("ordinal", "categorical"):
        return str(param.values[0]), str(param.values[-1])
    return f"{param.lower:.3g}", f"{param.upper:.3g}" + (" (log)" if param.log else "")


def importance_plot(importance: Importance, path: Path) -> Path:
    """Horizontal bars, most important on top; the number of trials it rests on in the title."""
    figure, axis = _figure(7, 0.6 * max(3, len(importance.values)) + 1)
    names = list(importance.values)[::-1]
    axis.barh(names, [importance.values[n] for n in names], color="#6baed6")
    axis.set_xlabel("share of the score's variance (fANOVA)")
    axis.set_title(f"rests on {importance.trials} scored trials" if importance.values else importance.note,
                   fontsize=10)
    return _save(figure, path)


def learning_curves_plot(record: d.SearchRecord, path: Path) -> Path:
    """The best ``TOP_TRIALS`` trials' metric by epoch in their outcome's colour (each stopped or failed trial's last
    epoch an x) on top of the others' in faint grey; ASHA's rungs as dashed lines."""
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    figure, axis = _figure(8, 4.5)
    rungs = d.asha_rungs(max_t=record.max_t, grace_period=record.grace_period,
                         reduction_factor=record.reduction_factor) if record.scheduler == "asha" else []
    for rung in rungs:
        axis.axvline(rung, color="grey", linestyle="--", linewidth=0.8)
    ranked = record.ranked_trials()
    top, rest = ranked[:d.TOP_TRIALS], ranked[d.TOP_TRIALS:]
    faded = [[(p.epoch, p.value) for p in trial.curve if p.value is not None] for trial in rest]
    if rest:
        axis.add_collection(LineCollection([c for c in faded if c], colors="#9e9e9e", alpha=0.15, linewidths=0.6,
                                           zorder=1))
        axis.set_title(f"the best {len(top)} of {len(ranked)} trials in colour, the other {len(rest)} in grey",
                       fontsize=10)
    for trial in reversed(top):  # the best drawn last, on top
        epochs = [p.epoch for p in trial.curve]
        values = [p.value if p.value is not None else float("nan") for p in trial.curve]
        colour = OUTCOME_COLOURS.get(trial.outcome, "black")
        axis.plot(epochs, values, color=colour, alpha=0.85, linewidth=1.3, zorder=2)
        if trial.outcome in (d.STOPPED, d.FAILED) and epochs:
            axis.plot(epochs[-1], values[-1], "x", color=colour, markersize=8, zorder=3)
    axis.autoscale_view()
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("epoch" + (f" (dashed: ASHA rungs {', '.join(map(str, rungs))})" if rungs else ""))
    axis.set_ylabel(record.metric)
    _outcome_legend(axis, {t.outcome for t in top}, others=len(rest))
    return _save(figure, path)


def timeline_plot(record: d.SearchRecord, path: Path) -> Path:
    """Trials as bars on worker slots against wall time; idle stretches show as empty space. Every bar carries its
    trial number up to ``TIMELINE_LABELS_MAX`` bars; above that only the best ``TOP_TRIALS`` do (and are outlined)."""
    bars = d.timeline(record.trials)
    slots = max((bar.slot for bar in bars), default=0) + 1
    figure, axis = _figure(9, min(0.5 * slots + 1.8, 12.0))
    numbers = {trial.trial_id: trial.number for trial in record.trials}
    many = len(bars) > d.TIMELINE_LABELS_MAX
    labelled = {t.trial_id for t in record.ranked_trials()[:d.TOP_TRIALS]} if many else set(numbers)
    groups: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for bar in bars:
        groups.setdefault((bar.slot, bar.outcome), []).append((bar.start_s, bar.end_s - bar.start_s))
    for (slot, outcome), spans in groups.items():  # one collection per slot and outcome, not one patch per bar
        axis.broken_barh(spans, (slot - 0.35, 0.7), facecolors=OUTCOME_COLOURS.get(outcome, "black"),
                         edgecolor="white", linewidth=0.3 if many else 1.0)
    for bar in bars:
        if bar.trial_id not in labelled:
            continue
        if many:
            axis.broken_barh([(bar.start_s, bar.end_s - bar.start_s)], (bar.slot - 0.35, 0.7), facecolors="none",
                             edgecolor="black", linewidth=1.0)
        axis.text(bar.start_s + 0.3, bar.slot, f"#{numbers.get(bar.trial_id, '?')}", va="center",
                  fontsize=7 if many else 8)
    axis.set_yticks(range(slots), [f"slot {i + 1}" for i in range(slots)], fontsize=8 if slots > 16 else None)
    axis.set_ylim(-0.6, slots - 0.4)
    axis.set_xlim(0, max(record.duration_s, max((b.end_s for b in bars), default=1.0)))
    axis.set_xlabel("wall time since the search started (s)")
    utilisation = d.slot_utilisation(bars, span_s=record.duration_s)
    title = f"{len(bars)} trials on {slots} slots, busy {utilisation:.0%} of the search's {record.duration_s:.0f} s"
    axis.set_title(title + (f"; the best {len(labelled)} outlined and numbered" if many else ""), fontsize=10)
    _outcome_legend(axis, {bar.outcome for bar in bars})
    return _save(figure, path)


def _outcome_legend(axis, outcomes: set[str], *, others: int = 0) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=OUTCOME_COLOURS[o], label=o) for o in OUTCOME_COLOURS if o in outcomes]
    if others:
        handles.append(Patch(color="#9e9e9e", alpha=0.4, label=f"{others} other trials"))
    if handles:
        axis.legend(handles=handles, fontsize=8, loc="best")


def winners_curse_plot(record: d.SearchRecord, path: Path) -> Path:
    """Per re-run configuration: its search score (star), its re-runs' validation (dots) and test scores (squares),
    and their test mean with the 95% interval (bar); the registered one shaded; the champion's mean dashed."""
    summary = record.reruns
    columns = d.rerun_columns(summary)
    figure, axis = _figure(max(6.0, 1.8 * len(columns) + 2), 4.5)
    for x, column in enumerate(columns):
        if column.registered:
            axis.axvspan(x - 0.45, x + 0.45, color="#fff2cc", zorder=0)
        axis.plot([x - 0.12], [column.search_value], "*", color="#08519c", markersize=13,
                  label="search's score (validation)" if x == 0 else None)
        axis.plot([x - 0.12] * len(column.val), column.val, "o", color="#6baed6", alpha=0.8,
                  label="re-runs, validation" if x == 0 else None)
        if column.val:
            axis.plot([x - 0.12], [sum(column.val) / len(column.val)], "_", color="#08519c", markersize=22,
                      markeredgewidth=2, label="re-runs' validation mean" if x == 0 else None)
        axis.plot([x + 0.12] * len(column.test), column.test, "s", color="#fd8d3c", alpha=0.8,
                  label="re-runs, test" if x == 0 else None)
        if column.interval is not None:
            mean, low, high = column.interval
            axis.errorbar([x + 0.24], [mean], yerr=[[mean - low], [high - mean]], fmt="D", color="#d94801",
                          capsize=5, label="test mean, 95% interval" if x == 0 else None)
    champion = (summary.decision or {}).get("champion") or {}
    reference = (champion.get("interval") or {}).get("mean", champion.get("value"))
    if reference is not None:
        axis.axhline(reference, color="grey", linestyle="--", linewidth=1,
                     label=f"champion v{champion['version']} (before)")
    axis.set_xticks(range(len(columns)), [c.label + ("\n(registered)" if c.registered else "") for c in columns])
    axis.set_ylabel(f"{summary.metric} / {summary.gate_metric}")
    axis.set_title(f"top {summary.top_k} configurations re-run on {len(summary.seeds)} new seeds", fontsize=10)
    axis.legend(fontsize=8, loc="best")
    return _save(figure, path)


def lineage_plot(record: d.SearchRecord, path: Path) -> Path:
    """pbt/pb2: each numeric perturbed setting against the epoch, one step line per trial (its own value, then the
    value each copy gave it), the copies marked; a log axis for a log-scaled range."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    params = {p.name: p for p in record.space}
    keys = [k for k in record.perturbed if params.get(k) is not None and params[k].kind in ("float", "int")]
    figure, axes = plt.subplots(1, max(1, len(keys)), figsize=(4.5 * max(1, len(keys)), 3.6), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for trial in sorted(record.trials, key=lambda t: t.number):
            points = [(e, v) for e, v in d.schedule_points(trial, key) if isinstance(v, (int, float))]
            if not points:
                continue
            epochs = [e for e, _ in points] + [max(trial.last_epoch, points[-1][0])]
            values = [v for _, v in points] + [points[-1][1]]
            line, = axis.step(epochs, values, where="post", label=f"#{trial.number}", alpha=0.8)
            axis.plot(epochs[1:-1], values[1:-1], "o", color=line.get_color(), markersize=4)
        if params[key].log:
            axis.set_yscale("log")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
    if keys and len(record.trials) <= d.TOP_TRIALS:
        axes[0][0].legend(fontsize="small")
    figure.suptitle("each trial's values by epoch; a dot: it copied another trial and went on with this value",
                    fontsize="small")
    return _save(figure, path)
