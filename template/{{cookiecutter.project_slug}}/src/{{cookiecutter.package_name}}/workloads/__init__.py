"""The workloads of this project, registered with loopml."""
