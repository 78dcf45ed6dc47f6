"""Stage 8: catalog, a static web site of the images (see ``site``, the stage itself).

- ``site``: the stage: collects, renders into a temporary folder, renames it into place;
- ``model``: collects the data (no rendering);
- ``artifacts``: reads and checks what is attached to a release;
- ``charts``: SVG charts with matplotlib;
- ``render``: the Jinja2 templates;
- ``search``: the package query ("gdal >=3.9") on conda's version semantics.
"""

from builder.catalog.site import Built, CatalogError, build

__all__ = ["Built", "CatalogError", "build"]
