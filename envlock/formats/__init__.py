"""Other tools' files in and out of envlock locks.

Importers (``envlock import``) live in one module per format and are reached
through the dispatch table in :mod:`envlock.formats.importers`.
"""
