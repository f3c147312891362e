"""Watching production: inference log, drift, alerts, continuous training."""
