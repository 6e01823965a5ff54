"""``python -m dashboard``: the same as ``pipeline-dashboard``."""

from dashboard.main import main

main()
