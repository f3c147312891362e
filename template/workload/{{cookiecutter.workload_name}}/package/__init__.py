"""The {{ cookiecutter.workload_name }} workload ({{ cookiecutter.workload_kind }}): data, schema, features, models, evaluation."""
