"""Output: results as frozen data, the output folder (results.json, grades.csv), the
feedback pages and nbgrader's gradebook."""
