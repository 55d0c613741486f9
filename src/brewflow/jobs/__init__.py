"""The steps of a run: preprocess a dataset, analyze it, combine results, write skims; and where
they run (local processes, ``distributed``, Slurm/HTCondor through dask-jobqueue)."""
