"""Where submissions are graded: here (the default, ``pipeline``'s own thread pool over a
``WorkerPool``) or on a Dask cluster (``dask_executor``). Either way one task is one call
of ``grading.grade_submission`` on plain data, and the machine that started the run is the
only writer of its output folder."""
