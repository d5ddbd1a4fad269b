"""Probes that read this machine into the lock model.

Each probe is three small parts: ``read_*`` does the I/O and returns raw text
or ``None``, ``parse_*`` is pure, and the result is a frozen model.  A missing
tool, library or driver is recorded as absent, never raised.
"""
