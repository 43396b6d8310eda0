"""Pipelines that exist only in the tests: proof that a new pipeline is a config file, a transform module
and its table's migration."""
