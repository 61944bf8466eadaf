"""Checking, in the grader's process on plain data: validating a worker's report,
comparing values with the oracle, static scans of answer code, re-measuring a training
run from its weights, and scoring a training run."""
