"""Many machines at once: capture every node of a cluster through its own launcher, and check them.

``slurm`` drives ``srun``; ``node`` is the task each node runs; ``protocol``
carries a node's lock home in the launcher's output; ``collect`` writes the
fleet directory; ``check`` compares nodes with a reference lock.
"""
