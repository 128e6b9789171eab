"""What a person sees: the quiet console (``quiet``), the progress lines while a search runs (``console``), the
summary it prints at the end (``outcome``), the parent run's description (``run_description``), the search
report (``search_report/``), ``mritune ui`` (``ui``), and the hooks the runner calls for all of them
(``search_views``). Imports the wings below it, never ``run`` or ``cli``.
"""
