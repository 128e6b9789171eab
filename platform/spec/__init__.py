"""What a search is asked to do: the spec file's schema, every key validated before anything starts (``config``),
the one parser of ``--set key.path=value`` (``overrides``), and the search folder's state file that says where a
running or finished search is tracked (``search_folder``). Imports only ``infra``.
"""
