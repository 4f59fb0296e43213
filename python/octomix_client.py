"""Compatibility module: `octomix_client` was the single-file client before the `octomix` package; it re-exports
the client from `octomix.client`, so code that puts this folder on sys.path keeps working. New code imports
`octomix` (pip install ./node_modules/octomix/python)."""
from octomix.client import *  # noqa: F401,F403
from octomix.client import __all__  # noqa: F401
