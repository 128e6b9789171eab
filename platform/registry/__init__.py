"""From a ranked search to a registered model: the best configurations trained again on new seeds (``rerun``,
``rerun_summary``, ``intervals``, ``rerun_tracking``, and how they read, ``rerun_views``), the checkpoint logged
as a pyfunc and registered (``registration``), and the gate that decides champion or challenger
(``promotion``). Imports ``tracking``, ``spec`` and ``infra``.
"""
