"""Shared by the fuzz tests: settings, the oracle of /set, the ledger of the map,
strategies and the checks every response must pass.

The whole suite (this package) fuzzes one standalone replica (conftest.py), which must
survive it (assert_survived); the rules it checks are README.md's. FUZZ_SCALE=10
multiplies the example counts for a longer hunt.
"""

from __future__ import annotations

import base64
import json
import os

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from actors.grades.records import FIELDS, INT64_MAX, INT64_MIN, MAX_KEY_BYTES
from actors.grades.testing import AUTH
from web.grades.setter import MAX_BODY_BYTES

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
TIMEOUT_S = 15
ALLOWED = ("user_id", *FIELDS)
AUTH_HEADER = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()
SET_STATUSES = {200, 400, 401, 413, 415}  # 503/504 cannot happen on a healthy replica
GET_STATUSES = {200, 400, 404}


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=examples(n),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


def worker_pids(replica) -> set[int]:
    """The pids of the gunicorn workers serving both ports (children of its master)."""
    return {w.pid for w in replica.workers()}


def assert_survived(replica) -> None:
    """No worker died or was replaced since the replica started, it still serves (a set,
    a get, a backup, ready), and its log has no traceback: what being fuzzed must leave.

    Checked by test_survival.py after its own burst, and by the package's ``replica``
    fixture at teardown, after every fuzz test that shared it (whatever their order).
    """
    assert worker_pids(replica) == replica.workers_at_start
    response = replica.set("still-alive", spp=11, return_fee=-1)
    assert response.status_code == 200, response.text
    assert replica.record("still-alive")["spp"] == 11
    assert requests.get(f"{replica.get_base}/backup", timeout=TIMEOUT_S).status_code == 200
    assert replica.ready()
    log = replica.output()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


# --- what every response must be ---------------------------------------------


def assert_error_body(response) -> str:
    """Our errors: JSON ``{"error": "<non-empty text>"}`` and nothing else."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.status_code,
        response.headers,
        response.content[:300],
    )
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


def assert_sane(response, allowed: set[int]) -> None:
    """Never a 5xx; a documented status; errors as JSON."""
    status = response.status_code
    assert status < 500, f"{status}: {response.content[:500]!r}"
    assert status in allowed, f"{status}: {response.content[:500]!r}"
    if status >= 400:
        assert_error_body(response)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


# --- a model of the replica's map: rejected requests change nothing -------------


class Ledger:
    """The replica's map before a batch, updated by the sets that were accepted.

    verify() reads the whole map again: a key no accepted set touched must be exactly as
    it was (values and versions); an accepted key must hold the merged values, with a newer
    version for each field that was set and the same version for each that was not.
    """

    def __init__(self, replica):
        self.replica = replica
        self.before = replica.backup_rows()
        self.values = {key: list(row[:4]) for key, row in self.before.items()}
        self.touched: set[str] = set()
        self.fields_set: dict[str, set[str] | None] = {}  # None: not known
        self.rejected = 0

    def expect(self, user_id: str, fields: dict) -> dict:
        """The record a set of these fields must produce (partial sets merge)."""
        values = list(self.values.get(user_id, [0, 0, 0, 0]))
        for i, field in enumerate(FIELDS):
            if field in fields:
                values[i] = fields[field]
        return {"user_id": user_id, **dict(zip(FIELDS, values))}

    def accepted(self, response, user_id: str, fields: dict) -> None:
        assert response.status_code == 200, (user_id, fields, response.status_code, response.text)
        assert response.json() == {"result": self.expect(user_id, fields)}
        self.values[user_id] = [response.json()["result"][f] for f in FIELDS]
        self.touched.add(user_id)
        if self.fields_set.get(user_id, set()) is not None:
            self.fields_set[user_id] = self.fields_set.get(user_id, set()) | set(fields)

    def record(self, response) -> None:
        """A response whose acceptance the test does not predict: trust a 200's record."""
        if response.status_code == 200:
            record = response.json()["result"]
            self.values[record["user_id"]] = [record[f] for f in FIELDS]
            self.touched.add(record["user_id"])
            self.fields_set[record["user_id"]] = None
        else:
            self.rejected += 1

    def verify(self) -> None:
        after = self.replica.backup_rows()
        changed = {
            key
            for key in set(self.before) | set(after)
            if key not in self.touched and self.before.get(key) != after.get(key)
        }
        assert not changed, {key: (self.before.get(key), after.get(key)) for key in changed}
        for key in self.touched:
            assert key in after, key
            assert list(after[key][:4]) == self.values[key], (key, after[key], self.values[key])
            fields_set = self.fields_set.get(key)
            if key not in self.before or fields_set is None:
                continue
            for i, field in enumerate(FIELDS):
                old, new = self.before[key][4 + i], after[key][4 + i]
                if field in fields_set:
                    assert new > old, (key, field, old, new)
                else:
                    assert new == old, (key, field, old, new)


# --- the oracle: what /set must do with a body -----------------------------------


def acceptable(pairs: list[tuple[str, object]]) -> tuple[str, dict] | None:
    """(user_id, fields) if an object of these key/value pairs is a valid /set body."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys) or not set(keys) <= set(ALLOWED):
        return None
    obj = dict(pairs)
    user_id = obj.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return None
    if any("\ud800" <= ch <= "\udfff" for ch in user_id):
        return None
    fields = {key: value for key, value in obj.items() if key != "user_id"}
    for value in fields.values():
        if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
            return None
    return user_id, fields


def encode_pairs(pairs, separators=(", ", ": "), ensure_ascii=True) -> bytes:
    """A JSON object from pairs, keeping repeated keys (json.dumps cannot)."""
    item_sep, key_sep = separators
    text = (
        "{"
        + item_sep.join(
            json.dumps(key, ensure_ascii=ensure_ascii)
            + key_sep
            + json.dumps(value, ensure_ascii=ensure_ascii)
            for key, value in pairs
        )
        + "}"
    )
    return text.encode("utf-8", "surrogatepass")


def post_set(replica, session, body, headers=None, auth=True, **kwargs):
    headers = dict(headers or {})
    if auth:
        headers.setdefault("Authorization", AUTH_HEADER)
    return session.post(replica.set_url, data=body, headers=headers, timeout=TIMEOUT_S, **kwargs)


def check_set(replica, ledger, session, body: bytes, expected, **kwargs):
    """POST a body whose fate the oracle knows: expected is (user_id, fields) or None."""
    response = post_set(replica, session, body, **kwargs)
    assert_sane(response, SET_STATUSES)
    if len(body) > MAX_BODY_BYTES:
        assert response.status_code == 413, (body[:200], response.text)
        ledger.rejected += 1
    elif expected is None:
        assert response.status_code == 400, (body[:300], response.status_code, response.text)
        ledger.rejected += 1
    else:
        ledger.accepted(response, *expected)
    return response


# --- strategies -----------------------------------------------------------------

EDGE_INTS = [
    0,
    1,
    -1,
    INT64_MAX,
    INT64_MIN,
    INT64_MAX + 1,
    INT64_MIN - 1,
    2**64,
    10**400,
    -(10**400),
]
int64s = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from(EDGE_INTS)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(EDGE_INTS)
    | st.floats()
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_values = (
    int64s
    | st.booleans()
    | st.none()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from([[], {}, [1], {"a": 1}, "1", "0x10", 1.0, -0.0, 1e300])
)
# a few users, so that accepted sets of the same user merge
user_ids = (
    st.sampled_from([f"fuzz-{i}" for i in range(6)] + ["ünï 😀", 'a,"b"\n\r'])
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "",
            "a" * 128,
            "a" * 129,
            "é" * 64,
            "é" * 65,
            "😀" * 32,
            "😀" * 33,
            "\x00",
            "\u2028",
            "\ufeff",
            " ",
        ]
    )
)
keys = (
    st.sampled_from(ALLOWED)
    | st.text(max_size=10)
    | st.sampled_from(
        [
            "User_id",
            "user_id ",
            " spp",
            "spp\x00",
            "SPP",
            "userid",
            "",
            'x":',
            "__proto__",
            "result",
        ]
    )
)


@st.composite
def object_pairs(draw):
    """Key/value pairs of one JSON object: mostly the real fields, sometimes odd keys,
    sometimes a key repeated."""
    pairs = []
    if draw(st.integers(0, 9)):
        pairs.append(("user_id", draw(user_ids)))
    for field in FIELDS:
        if draw(st.booleans()):
            value = draw(int64s) if draw(st.integers(0, 3)) else draw(field_values)
            pairs.append((field, value))
    if not draw(st.integers(0, 3)):
        pairs.append((draw(keys), draw(field_values | user_ids)))
    if pairs and not draw(st.integers(0, 5)):
        key, _ = draw(st.sampled_from(pairs))
        pairs.append((key, draw(field_values | user_ids)))
    return draw(st.permutations(pairs))


def valid_pairs():
    return object_pairs().filter(lambda pairs: acceptable(pairs) is not None)
