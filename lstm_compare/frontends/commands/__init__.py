"""One module per subcommand, each with ``add_arguments(parser)`` and ``execute(args) -> exit code``."""
