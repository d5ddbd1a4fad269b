"""``envlock pack``: the whole environment in one file, replayed with the network off (issue 12).

:mod:`envlock.pack.format` writes and checks the file (the only module that
reads pack bytes); :mod:`envlock.pack.build` gathers the artifacts.
"""
