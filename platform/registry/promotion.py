"""The promotion gate, safe when several searches register into one model name at once.

Each registration creates its model version with the tag ``promotion=pending`` (in the same call, so the tag and
the version appear together). Versions are numbered by the registry in creation order, so they form a queue: a
registration waits until no lower-numbered version of the model is still pending, then reads the champion,
compares, sets its alias, and only then replaces ``pending`` with its reason, which lets the next one go. Two
registrations therefore never read the same champion and overwrite each other's decision. A version still pending
after ``STALE_AFTER_S`` belongs to a registration that died mid-way; it no longer holds the queue. (Age counts from the version's creation, so a
queue whose head waits longer than that — some eighty registrations into one name at the same moment, at the
1.5 s per gate measured by benchmarks/reliability.py — would let the later ones overlap again.)

Reading the champion fails closed: only "no such alias" / "no such model" means there is no champion; any other
registry error (a server error, a permission error) stops the registration with a clear error and leaves every
alias as it was.

The comparison (``compare``): under the ``interval`` rule (the default) a version that carries a 95% interval of
its gate metric over re-runs (``platform/registry/rerun.py``: tags ``rerun.mean``, ``rerun.ci95_low``, ``rerun.ci95_high``)
takes ``champion`` only if its interval's worse end still beats the champion's mean (for a higher-is-better
metric: its lower bound above the champion's mean). A champion registered without an interval (before re-runs
existed, or with them off) is compared by its single number, and a challenger without one by its own; the reason
says so. The ``single`` rule compares the two versions' single test numbers, as mritune did before re-runs.
A champion whose number cannot be read (its metric tag missing, not a number or NaN, and no interval under the
``interval`` rule) is not displaced: the gate fails closed here too, and the reason names the tag.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from mritune.platform.spec.config import INTERVAL_RULE, RULES, SINGLE_RULE
from mritune.platform.tracking.tags import (DATASET_FINGERPRINT_TAG, PROMOTION_TAG, RERUN_HIGH_TAG, RERUN_LOW_TAG,
                                   RERUN_MEAN_TAG, metric_tag)
from mritune.trainables.errors import ServiceFailed

CHAMPION = "champion"
CHALLENGER = "challenger"
PENDING = "pending"
# A registration takes seconds from creating its version to setting its alias; a version pending for longer
# was left by a registration that died, and no longer holds the queue.
STALE_AFTER_S = 120.0
_POLL_S = 0.2

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Interval:
    """A gate metric's mean over a version's re-runs and its bootstrap 95% interval (``platform/registry/intervals.py``)."""

    mean: float
    low: float
    high: float

    TAGS = (RERUN_MEAN_TAG, RERUN_LOW_TAG, RERUN_HIGH_TAG)

    def tags(self) -> dict[str, str]:
        """The version tags that carry it (exact: the gate reads them back)."""
        return dict(zip(self.TAGS, (repr(float(self.mean)), repr(float(self.low)), repr(float(self.high)))))

    @classmethod
    def from_tags(cls, tags: dict) -> "Interval | None":
        """The interval a version's tags carry, or None (registered before re-runs, or with them off)."""
        if not all(tag in tags for tag in cls.TAGS):
            return None
        mean, low, high = (_number(tags[tag]) for tag in cls.TAGS)
        if mean is None or low is None or high is None:
            return None  # a damaged interval is no interval: the single number (or nothing) decides
        return cls(mean=mean, low=low, high=high)

    def text(self) -> str:
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]"


def current_champion(client, model_name: str, champion_alias: str = CHAMPION):
    """The version holding ``champion_alias``, or None when the model or the alias does not exist.

    Raises:
        ServiceFailed: Any other registry error (unreachable, permission, server error): the gate fails closed.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, champion_alias)
    except MlflowException as exc:
        if _means_no_such_alias(exc):
            return None
        raise ServiceFailed(f"could not read {model_name}@{champion_alias} from the registry "
                            f"({exc.error_code}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                            "nothing was promoted and the aliases are unchanged") from exc


def _means_no_such_alias(exc) -> bool:
    # MLflow answers a missing model with RESOURCE_DOES_NOT_EXIST and a missing alias with INVALID_PARAMETER_VALUE
    # "Registered model alias champion not found." (SQL store and server alike).
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(exc).lower()
    return exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message


def decide_alias(client, model_name: str, *, fingerprint: str, value: float, metric: str, mode: str,
                 champion_alias: str = CHAMPION, interval: Interval | None = None,
                 rule: str = INTERVAL_RULE) -> tuple[str, str | None, str]:
    """(alias for the new version, the current champion's version or None, a one-line reason).

    ``value`` is the new version's single test number, ``interval`` its re-run interval (None: it has none).

    Raises:
        ServiceFailed: The champion could not be read (see ``current_champion``).
    """
    champion = current_champion(client, model_name, champion_alias)
    if champion is None:
        return champion_alias, None, f"no {champion_alias} yet"
    if champion.tags.get(DATASET_FINGERPRINT_TAG) != fingerprint:
        return CHALLENGER, str(champion.version), f"{champion_alias} v{champion.version} was trained on other data"
    wins, reason = compare(value=value, interval=interval, champion_tags=champion.tags,
                           champion_version=str(champion.version), metric=metric, mode=mode, rule=rule)
    return (champion_alias if wins else CHALLENGER), str(champion.version), reason


def compare(*, value: float, interval: Interval | None, champion_tags: dict, champion_version: str, metric: str,
            mode: str, rule: str = INTERVAL_RULE) -> tuple[bool, str]:
    """(whether the new version beats the champion on the same data, the one-line reason); see the module's text.

    Raises:
        ValueError: An unknown ``rule`` (the spec validates it; a caller's bug).
    """
    if rule not in RULES:
        raise ValueError(f"promotion rule must be one of {RULES}, got {rule!r}")
    single = _number(champion_tags.get(metric_tag(metric)))
    champion_interval = Interval.from_tags(champion_tags) if rule == INTERVAL_RULE else None
    reference = champion_interval.mean if champion_interval else single
    if reference is None:  # fails closed: a champion that cannot be compared is not displaced by any score
        return False, (f"not compared: v{champion_version} has no usable {metric_tag(metric)} "
                       f"(tag {champion_tags.get(metric_tag(metric))!r}); it keeps its alias until one is "
                       "moved by hand (mlflow's set_registered_model_alias)")
    against = (f"v{champion_version}'s mean {reference:.4g}" if champion_interval
               else f"v{champion_version}'s {reference:.4g}")
    if rule == SINGLE_RULE:
        ours, what, note = value, f"{metric} {value:.4g}", " (single-number rule)"
    elif interval is None:
        ours, what, note = value, f"{metric} {value:.4g} (no interval)", ""
    else:
        ours = interval.low if mode == "max" else interval.high
        what = f"{metric} {interval.text()}: its {'lower' if mode == 'max' else 'upper'} bound {ours:.4g}"
        note = ""
    if rule == INTERVAL_RULE and champion_interval is None:
        note += f" (v{champion_version} has no interval: compared by its single number)"
    wins = ours > reference if mode == "max" else ours < reference  # a NaN of ours never wins
    return wins, f"{what} {'beats' if wins else 'does not beat'} {against}{note}"


def _number(text: str | None) -> float | None:
    """A version tag's number, or None when the tag is missing, not a number, NaN or infinite."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def promote(client, model_name: str, version: str, *, fingerprint: str, value: float, metric: str, mode: str,
            champion_alias: str = CHAMPION, stale_after_s: float = STALE_AFTER_S, interval: Interval | None = None,
            rule: str = INTERVAL_RULE) -> tuple[str, str | None, str]:
    """Run the gate for ``version`` (created with ``promotion=pending``) in its turn; returns ``decide_alias``'s
    answer after setting that alias and the version's ``promotion`` tag.

    Args:
        client: An ``MlflowClient`` of the registry.
        model_name: The registered model.
        version: The new version, created with the tag ``PROMOTION_TAG: PENDING``.
        fingerprint: The dataset fingerprint the version was trained on.
        value: Its gate metric value; metric, mode: the gate metric and whether higher (max) is better.
        champion_alias: The alias the gate moves.
        stale_after_s: Earlier versions pending longer than this are not waited for.
        interval: The version's re-run interval of the gate metric (also on its tags), or None.
        rule: ``interval`` (default) or ``single`` (see ``compare``).

    Raises:
        ServiceFailed: The registry failed while deciding; the aliases are unchanged and the version is tagged
            ``promotion=failed: ...`` (so the versions after it do not wait for it).

    Example:
        >>> promote(client, "mritune-classifier", "7", fingerprint="ab12", value=0.83,  # doctest: +SKIP
        ...         metric="test_macro_f1", mode="max")
        ('champion', '6', 'test_macro_f1 0.83 beats v6's 0.79')
    """
    try:
        _wait_for_turn(client, model_name, version, stale_after_s=stale_after_s)
        alias, previous, reason = decide_alias(client, model_name, fingerprint=fingerprint, value=value,
                                               metric=metric, mode=mode, champion_alias=champion_alias,
                                               interval=interval, rule=rule)
        client.set_registered_model_alias(model_name, alias, version)
    except BaseException as exc:
        _release_failed(client, model_name, version, exc)
        raise
    client.set_model_version_tag(model_name, version, PROMOTION_TAG, reason)  # lets the next version go
    return alias, previous, reason


def _wait_for_turn(client, model_name: str, version: str, *, stale_after_s: float) -> None:
    """Return once no lower-numbered version of the model is still pending (or it went stale)."""
    while True:
        now_ms = time.time() * 1000
        ahead = [v.version for v in client.search_model_versions(f"name='{model_name}'")
                 if int(v.version) < int(version) and v.tags.get(PROMOTION_TAG) == PENDING
                 and now_ms - v.creation_timestamp < stale_after_s * 1000]
        if not ahead:
            return
        logger.info("%s v%s waits for the promotion of v%s", model_name, version, ", v".join(map(str, ahead)))
        time.sleep(_POLL_S)  # polling the registry: MLflow offers no notification


def _release_failed(client, model_name: str, version: str, exc: BaseException) -> None:
    """Best effort: mark the version's gate as failed so later versions stop waiting for it."""
    from mlflow.exceptions import MlflowException

    try:
        client.set_model_version_tag(model_name, version, PROMOTION_TAG, f"failed: {type(exc).__name__}")
    except MlflowException:
        logger.warning("could not tag %s v%s as failed; later registrations wait %.0f s for it", model_name, version,
                       STALE_AFTER_S)
