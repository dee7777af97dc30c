"""``python -m tokenproviders.cli``: the same as the ``tokenproviders`` command."""

from . import main

if __name__ == "__main__":
    main()
