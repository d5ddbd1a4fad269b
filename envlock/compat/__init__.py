"""Hardware and CUDA compatibility: facts as data (``data/*.csv``) and pure rules over locks.

Never probes and never imports ``envlock.capture``; ``envlock.doctor`` composes
the two (capture this host, then apply :func:`envlock.compat.rules.host_findings`).
"""
