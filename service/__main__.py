"""`python -m service` is the `ruta` command."""

from service.cli import main

main()
