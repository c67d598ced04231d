"""One module per `probeval` subcommand: `add_parser(subparsers, name, help)` and `run(args)`."""
