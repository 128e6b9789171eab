"""The search report: what a person looks at after (or during) a search.

``collect`` reads a search from MLflow (the parent run, its trial runs, the registry) into the plain records of
``data``; ``data`` turns them into what each plot draws (pure functions, asserted directly by the tests);
``importance`` asks Optuna's fANOVA evaluator which hyperparameters mattered; ``plots`` draws the PNGs;
``html`` writes one self-contained page; ``build`` is the entry the runner and ``mritune report`` call.
"""
