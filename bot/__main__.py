"""``python -m bot`` runs the newsbot command."""

from .cli import main

main()
