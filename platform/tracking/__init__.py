"""What a search records in MLflow: mritune's tag names (``tags``), the trials' runs logged from their processes
(``trial_runs``), the search's parent run and its results table (``search_run``), the driver's Tune callbacks
that name and close trial runs (``run_callbacks``), the one rule that ranks trials (``ranking``) and the one rule
that shows a value (``display``). Imports ``spec`` and ``infra``.
"""
