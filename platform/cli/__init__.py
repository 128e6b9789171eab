"""The ``mritune`` command line (``app``: the Typer app and the console script's ``main``), one module per command
group (``data``, ``train``, ``search``, ``jobs``, ``cluster``, ``deploy``). Commands are thin: they parse options
and call the plain functions of the wings below. The top wing: nothing imports it.
"""


def main() -> None:
    """The console script of installs made before the wings (their ``mritune`` script calls
    ``mritune.platform.cli:main``); new installs call ``mritune.platform.cli.app:main`` directly."""
    from mritune.platform.cli.app import main as app_main

    app_main()
