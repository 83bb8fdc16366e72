"""accrual: the loyalty points calculator of the course spec, as a development and test
double of the real one (reward rules, registered orders, a per-minute rate limit)."""
