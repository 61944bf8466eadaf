"""The sandbox's control side: how a worker is confined (``launch``) and the pool of
workers that runs jobs (``pool``). What runs *inside* the sandbox is in ``inside/``, which
imports nothing of the grader's; its files are bound into the sandbox as they are."""
