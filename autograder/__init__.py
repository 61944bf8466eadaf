"""The course's autograder: grades nbgrader notebooks in sandboxed workers.

``python -m autograder grade --assignment ID --out DIR SUBMISSION...`` grades;
``python -m autograder release`` regenerates the student notebooks in ``exercises/``.
The pipeline is in ``pipeline.py``; the parts in ``parts/``; the sandbox in
``sandbox.py`` (grader side) and ``worker.py`` (inside it). Importing this package
imports neither torch nor nbgrader.
"""
__all__ = ["__version__"]
__version__ = "1.0.0"
