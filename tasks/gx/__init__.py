"""The Great Expectations adapter: the input contract as GX suites, run on each role's window.

* :mod:`tasks.gx.window`: the validate stage (:func:`validate_window`: read the window, schema
  checks, quarantine, the suites, summary, profile) and :func:`inputs_after_quarantine`;
* :mod:`tasks.gx.suites`: each role's window and drift suites, and the versioned copies under
  ``expectations/`` (``isbench suites`` writes and checks them);
* :mod:`tasks.gx.runner`: the ephemeral GX context, running batches, result records, Data Docs.

Great Expectations takes about 2 s to import, and only :mod:`tasks.gx.suites` and
:mod:`tasks.gx.runner` import it: import their names from those modules. This package
re-exports only :mod:`tasks.gx.window`, which imports GX when it runs suites (in a thread while
the window is read), so importing ``tasks.gx`` (as the flow module does) stays fast.
"""

import os

from tasks.gx.window import inputs_after_quarantine, validate_frame, validate_window

# Before either GX module imports Great Expectations: pipeline runs send no usage statistics.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

__all__ = ["inputs_after_quarantine", "validate_frame", "validate_window"]
