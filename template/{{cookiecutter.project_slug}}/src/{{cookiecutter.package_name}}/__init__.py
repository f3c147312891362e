"""{{ cookiecutter.project_name }}: workloads run by loopml."""
