"""Workloads: one business problem each (data, schema, features, models)."""
