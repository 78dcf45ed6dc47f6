"""scistacks: curated, locked, multi-arch scientific environments for JupyterHubs.

The package reads top-down as the pipeline:
spec -> lock -> context -> image -> smoke -> publish -> profiles, with a thin cli.
"""

__version__ = "0.1.0"
