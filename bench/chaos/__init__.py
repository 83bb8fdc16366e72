"""`make chaos`: everything `make run` starts, under load, with kill -9 of any process.

One module per job: ``topology`` starts the processes the Procfile names on free
ports in a temporary directory; ``manager`` restarts a top-level process that died,
as a service manager would; ``workloads/`` drives each service and records every
answer; ``killer`` picks a random process of the whole tree by its title and
SIGKILLs it; ``checks/`` holds each service's invariants; ``report`` prints it all;
``run`` is the command (``python -m bench.chaos.run``); ``outage`` kills only one kind of
process, N times, and prints each outage (a quick before/after of one fix);
``restart_timeline`` stamps each step of a PostgreSQL service's supervisor restart.
"""
