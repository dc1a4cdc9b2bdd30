"""Search parameters as data: SearchParameter resources, loaded, split per type and compiled.

`directory.registry` is the façade the rest of the code imports; this package builds it.
"""

from .definitions import ResourceDef, SearchParam
from .loader import build_resources, read_bundles

__all__ = ["ResourceDef", "SearchParam", "build_resources", "read_bundles"]
