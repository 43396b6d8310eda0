"""Pipelines that exist only in the tests: proof that a new pipeline is a config file plus a transform module."""
