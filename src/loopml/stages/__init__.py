"""Pipeline stages: each reads stored artefacts and writes stored artefacts."""
