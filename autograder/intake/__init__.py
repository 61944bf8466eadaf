"""Intake: finding submissions (files, folders, zips) and reading their notebooks."""
