"""`python -m tests.without <package> <module> <args>`: run ``python -m <module> <args>`` as on a machine where
``package`` is not installed (importing it fails, and importlib finds no spec for it)."""

import runpy
import sys

if __name__ == "__main__":
    sys.modules[sys.argv[1]] = None  # the import system's "not importable" marker
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
