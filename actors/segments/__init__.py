"""segments: user segments for A/B experiments (seed 004), with TTL, percent rollout and history.

`store.py` holds every SQL statement, `reaper.py` the actor that turns expiries into
history rows, `cli.py` the `segments` console command; the HTTP app is `web.segments`.
"""
