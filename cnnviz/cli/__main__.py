"""``python -m cnnviz.cli``: the same as the ``cnnviz`` console script."""

from cnnviz.cli import main

main()
