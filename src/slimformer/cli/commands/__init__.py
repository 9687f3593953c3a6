"""One module per step: its ARGUMENTS (dataclasses) and main(argv)."""
