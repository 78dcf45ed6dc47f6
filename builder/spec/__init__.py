"""Stage 1: distribution specs (``catalog``: the stage; ``models``, ``loader``, ``layering``,
``matchspec``, ``pep508``, ``selectors``, ``environment_yaml``: its parts)."""

from builder.errors import SpecError
from builder.spec.catalog import Catalog
from builder.spec.layering import Distribution, NotebookRef
from builder.spec.models import DistributionSpec

__all__ = ["Catalog", "Distribution", "DistributionSpec", "NotebookRef", "SpecError"]
