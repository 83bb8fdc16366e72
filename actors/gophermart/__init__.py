"""gophermart: the loyalty points service of seed 003 (users, orders, balance,
withdrawals) with its accrual poller."""
