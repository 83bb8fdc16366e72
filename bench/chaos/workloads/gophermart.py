"""gophermart and accrual under load: purchases told to accrual, orders uploaded,
points withdrawn; what each got back is kept for the checks.

Every order is worth REWARD points (one rule, "pt"); a withdrawal spends
WITHDRAW_SUM against a fresh order number. A request without an answer is not
retried with the same number: its outcome stays unknown, which the checks allow.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from actors.shared.luhn import checksum_digit
from bench.chaos.answers import Answers
from bench.chaos.workloads.base import Workload

__all__ = ["GophermartWorkload", "REWARD", "WITHDRAW_SUM"]

USERS = 8
REWARD = 100
WITHDRAW_SUM = 30
MATCH = "ChaosGoods"


@dataclass
class Account:
    login: str
    token: str = ""
    uploaded: dict[str, int] = field(default_factory=dict)
    """Order number -> gophermart's answer to its upload (202/200 accepted)."""
    withdrawals: dict[str, int] = field(default_factory=dict)
    """Withdrawal order number -> the status of the answer (0: none)."""


class GophermartWorkload(Workload):
    service = "gophermart"

    def __init__(self, answers: Answers, base: str, accrual_base: str, seed: int):
        super().__init__(answers)
        self.base, self.accrual_base = base, accrual_base
        self.rng = random.Random(seed)
        self.numbers = itertools.count(10_000)
        self.accounts = [Account(f"chaos-{seed}-{k}") for k in range(USERS)]
        self.rule_made = False

    def _number(self) -> str:
        prefix = str(next(self.numbers))
        return prefix + checksum_digit(prefix)

    def _accrual(self, what: str, path: str, document: object):
        return self.answers.ask(
            "accrual",
            "accrual",
            what,
            lambda: self.session.post(f"{self.accrual_base}{path}", json=document, timeout=5),
        )

    def _sign_in(self, account: Account) -> bool:
        body = {"login": account.login, "password": "chaos-password"}
        response = self.ask(
            "gophermart", "register", "POST", f"{self.base}/api/user/register", json=body
        )
        if response is not None and response.status_code == 409:
            response = self.ask(
                "gophermart", "login", "POST", f"{self.base}/api/user/login", json=body
            )
        if response is None or response.status_code != 200:
            return False
        account.token = response.headers["Authorization"]
        return True

    def step(self) -> None:
        if not self.rule_made:
            response = self._accrual(
                "rule", "/api/goods", {"match": MATCH, "reward": REWARD, "reward_type": "pt"}
            )
            self.rule_made = response is not None and response.status_code in (200, 409)
            return
        account = self.rng.choice(self.accounts)
        if not account.token:
            self._sign_in(account)
            return
        headers = {"Authorization": account.token}
        if self.rng.random() < 0.6:
            self._upload(account, headers)
        elif self.rng.random() < 0.5:
            number = self._number()
            response = self.ask(
                "gophermart",
                "withdraw",
                "POST",
                f"{self.base}/api/user/balance/withdraw",
                json={"order": number, "sum": WITHDRAW_SUM},
                headers=headers,
            )
            account.withdrawals[number] = response.status_code if response is not None else 0
        else:
            self.ask(
                "gophermart", "balance", "GET", f"{self.base}/api/user/balance", headers=headers
            )

    def _upload(self, account: Account, headers: dict[str, str]) -> None:
        number = self._number()
        goods = [{"description": f"{MATCH} kettle", "price": 10}]
        told = self._accrual("purchase", "/api/orders", {"order": number, "goods": goods})
        if told is None or told.status_code != 202:
            return  # accrual does not know it: uploading it would only end INVALID
        response = self.ask(
            "gophermart",
            "upload",
            "POST",
            f"{self.base}/api/user/orders",
            data=number.encode(),
            headers={**headers, "Content-Type": "text/plain"},
        )
        account.uploaded[number] = response.status_code if response is not None else 0
