"""The machinery under a search, with nothing of its meaning: how errors become one line (``errors``), processes
started in sessions of their own and stopped by pid (``processes``), joining or starting Ray (``cluster``), where
trials store their checkpoints, a folder or a pyarrow URI (``storage``), how fast a trial may run on this machine
(``trial_speed``), and ``mritune cluster local``'s services (``local_services``, ``local_cluster``). The lowest
wing: it imports no other wing of platform/.
"""
