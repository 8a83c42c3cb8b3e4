"""``python -m threadwidget ...`` runs the ``threadwidget`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
