"""What every service's benchmarks share, naming no service.

- ``errors``: ``BenchError``, a measurement that cannot go on.
- ``pg``: a private PostgreSQL on a free port in a temp dir, and ``pgbench`` against it
  (``-S``, ``-N``, ``-b tpcb-like``: tps and p50/p99 latency).
- ``wrk``: wrk with a Lua script whose ``done()`` prints one RESULT line.
- ``ceiling``: the HTTP ceiling, a falcon.asgi route answering a constant JSON under
  the services' gunicorn worker settings.
- ``side``: runs ours and a yardstick alternately and gives ratios; the table and the
  JSON under bench/results/.
"""
