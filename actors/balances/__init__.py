"""balances (seed 002): users, amount tasks applied in order by sharded worker actors."""
