"""Probes that read this machine into the lock model.

Each probe is three small parts: ``read_*`` does the I/O and returns raw text
or ``None``, ``parse_*`` is pure, and the result is a frozen model.  A missing
tool, library or driver is recorded as absent, never raised.
"""

# envlock.capture(...) is also the API function: calling this package calls it.
import envlock as _envlock  # noqa: E402  (the package is already imported: free)

_envlock._callable_module(__name__)
