"""The run: the Prefect flow and everything that drives it.

`flow` holds the flow, its tasks and the deployment (`serve`); `executors` decides where CPU
work runs (a process pool, or one thread of the run's process); `planning` compares the raw
folder with the warehouse; `shards` reads, processes and stages a shard's files;
`prefect_server` starts a temporary server; `report` writes the run's report artifact.
The only package that imports Prefect.
"""
