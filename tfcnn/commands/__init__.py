"""One module per ``python -m tfcnn`` sub-command: ``add_parser(subparsers)`` sets ``run``."""
