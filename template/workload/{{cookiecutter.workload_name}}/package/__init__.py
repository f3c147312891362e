"""The {{ cookiecutter.workload_name }} workload ({{ cookiecutter.workload_kind }}).

Data, schema, features, models, evaluation and the capabilities loopml uses.
"""
