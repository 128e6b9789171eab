"""Running a search: the plain entry functions the CLI, Ray Jobs and tests call (``runner``: run_search,
resume_search), the search submitted as a Ray Job (``jobs``), the dry run (``dry_run``) and the quickstart
(``quickstart``). Imports every wing below it; only ``cli`` imports it.
"""
