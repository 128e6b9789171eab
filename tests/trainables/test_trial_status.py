"""The one rule for a trial run's final status (issue 12): the trial's process and the driver both apply it."""

from __future__ import annotations

import pytest

from mritune.trainables.reporting import ERRORED, RETURNED, STOPPED, final_trial_status


@pytest.mark.parametrize(("ending", "last_epoch", "status"), [
    (RETURNED, 4, "FINISHED"),
    (RETURNED, 0, "FINISHED"),  # a trial restored after its last epoch returns without reporting one
    (STOPPED, 2, "KILLED"),  # ASHA stopped it before its last epoch
    (STOPPED, 4, "FINISHED"),  # ASHA stops every trial that reaches max_t: it finished
    (ERRORED, 4, "FAILED"),
    (ERRORED, 0, "FAILED"),
])
def test_final_status(ending, last_epoch, status):
    assert final_trial_status(ending, last_epoch=last_epoch, max_epochs=4) == status


def test_unknown_ending_is_refused():
    with pytest.raises(ValueError, match="ending must be"):
        final_trial_status("crashed", last_epoch=1, max_epochs=4)


def test_the_three_places_call_the_rule_instead_of_repeating_it():
    """tune_trainables and the driver's TrialRunCloser call final_trial_status; the observer writes what it gets."""
    import inspect

    from mritune.platform.tracking import run_callbacks

    from mritune.platform.tracking import trial_runs
    from mritune.trainables import tune_trainables

    assert "final_trial_status(" in inspect.getsource(tune_trainables)
    assert "final_trial_status(" in inspect.getsource(run_callbacks.TrialRunCloser)
    observer_end = inspect.getsource(trial_runs.MlflowTrialObserver.on_end)
    assert "KILLED" not in observer_end and "FINISHED" not in observer_end.split('"""')[-1]
