"""The `slimformer` command: one subcommand per step."""
