"""`python -m flows` is the `corpus` command."""

from flows.interface.cli import main

main()
