"""One module per CLI command: ``add_arguments(parser)`` and ``run(args) -> exit code``.

Keep module-level imports light; import the library inside ``run``.
"""
