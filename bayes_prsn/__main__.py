"""``python -m bayes_prsn`` runs the ``bayes-prsn`` command line."""

import sys

from .cli import main

sys.exit(main())
