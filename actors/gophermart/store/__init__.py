"""Every SQL statement of gophermart, one module per concern: the HTTP side's `users`,
`orders` and `balance` (withdrawals too), and the accrual poller's `polling`; `base`
holds the schema, the errors and readiness. Import the names from here
(`from actors.gophermart import store`).

Contention is settled by PostgreSQL: unique keys become `LoginTaken`,
`OrderOwnedByAnother`, `OrderAlreadyWithdrawn`; a withdrawal is one conditional UPDATE
(`InsufficientFunds`); a credit is one statement that changes the order's status and the
balance together, guarded by the status, so it happens once; the poller leases orders
with `FOR UPDATE SKIP LOCKED`, so two instances never ask about the same order at once.
"""

from actors.gophermart.store.balance import (
    Balance,
    Withdrawal,
    get_balance,
    list_withdrawals,
    withdraw,
)
from actors.gophermart.store.base import (
    ORDERS_CHANNEL,
    SCHEMA_DIR,
    InsufficientFunds,
    LoginTaken,
    OrderAlreadyWithdrawn,
    OrderOwnedByAnother,
    StoreError,
    UnknownUser,
    ping,
)
from actors.gophermart.store.orders import Order, list_orders, upload_order
from actors.gophermart.store.polling import (
    Final,
    Retry,
    accrual_pause_s,
    claim_orders,
    finish_orders,
    pause_accrual,
    poll_state,
    release_leases,
    reschedule_orders,
)
from actors.gophermart.store.users import create_user, find_user

__all__ = [
    "ORDERS_CHANNEL",
    "SCHEMA_DIR",
    "Balance",
    "Final",
    "InsufficientFunds",
    "LoginTaken",
    "Order",
    "OrderAlreadyWithdrawn",
    "OrderOwnedByAnother",
    "Retry",
    "StoreError",
    "UnknownUser",
    "Withdrawal",
    "accrual_pause_s",
    "claim_orders",
    "create_user",
    "find_user",
    "finish_orders",
    "get_balance",
    "list_orders",
    "list_withdrawals",
    "pause_accrual",
    "ping",
    "poll_state",
    "release_leases",
    "reschedule_orders",
    "upload_order",
    "withdraw",
]
