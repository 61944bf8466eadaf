"""nbgrader's settings for this course: solutions/ holds the sources, exercises/ the releases.

``python -m autograder release`` (``make exercises``) runs ``generate_assignment`` with
these settings in a scratch course folder, so nothing but exercises/ changes here.
``nbgrader autograde`` and ``nbgrader export`` read them too; point ``--db`` at a grading
run's ``gradebook.db`` to see its grades (for example ``nbgrader export --db
sqlite:///grades/gradebook.db``).
"""
c = get_config()  # noqa: F821 - traitlets provides get_config() when it loads this file

c.CourseDirectory.course_id = "cnn-course"  # the same id the autograder's gradebook uses
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# Residual's hidden tests build several blocks; 120 s per cell is ample on 2 cores.
c.ExecutePreprocessor.timeout = 120
