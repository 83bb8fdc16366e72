"""One steady client per service; each records every answer in the run's Answers."""
