"""Code that runs inside the sandbox, next to student code: the worker, its drivers, the
wire format, seccomp and confinement, and the training entry. Each module imports only
the standard library, numpy, torch and its siblings (``training`` also the course's own
``cnncourse``); ``tests/test_architecture.py`` checks that from the syntax tree. Inside
the sandbox the files are loaded by path, as top-level modules, never as this package."""
