"""Per-channel consent for the ``channel_consent`` shape.

Drawn from a hash of (seed, customer_id, channel) rather than the chunk's random streams, so the
shape is the standard shop of the same arguments with three more columns, nothing else changed.
Email follows the general opt-in (most opted-in customers also allow email), SMS is given or
refused on its own (it overrides the opt-in both ways), push is often left empty (unknown: the
opt-in decides). A few SMS values are unparsable, as in real exports.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

EMAIL_SHARE_OF_OPTED_IN = 0.85
SMS_SHARE = 0.30
PUSH_STATED_SHARE = 0.5
PUSH_SHARE_OF_STATED = 0.5
UNPARSABLE_SHARE = 0.005
UNPARSABLE_VALUE = "maybe"


def _uniform(seed: int, customer_ids: list[str], channel: str) -> np.ndarray:
    """A uniform number in [0, 1) per customer, a pure function of (seed, id, channel)."""
    return np.array(
        [
            int.from_bytes(
                hashlib.md5(f"{seed}|{customer_id}|{channel}".encode()).digest()[:8], "big"
            )
            / 2**64
            for customer_id in customer_ids
        ]
    )


def _spelled(consent: np.ndarray, stated: np.ndarray) -> pa.Array:
    return pa.array(np.where(stated, np.where(consent, "true", "false"), ""), pa.string())


def with_channel_consent(customers: pa.Table, seed: int) -> pa.Table:
    """Append ``email_consent``, ``sms_consent`` and ``push_consent`` to a customers table.

    Parameters
    ----------
    customers : pyarrow.Table
        Raw customer rows with ``customer_id`` and ``marketing_opt_in`` (re-loads included: a
        customer's rows get the same consent).
    seed : int
        The shop's seed.

    Returns
    -------
    pyarrow.Table
        The table with three string columns (``true``, ``false``, empty or unparsable).
    """
    ids = [str(value) for value in customers["customer_id"].to_pylist()]
    opt_in = np.array(
        [bool(value) for value in customers["marketing_opt_in"].to_pylist()], dtype=bool
    )
    everyone = np.ones(len(ids), dtype=bool)
    email = opt_in & (_uniform(seed, ids, "email") < EMAIL_SHARE_OF_OPTED_IN)
    sms_draw = _uniform(seed, ids, "sms")
    sms = _spelled(sms_draw < SMS_SHARE, everyone)
    unparsable = sms_draw > 1 - UNPARSABLE_SHARE
    sms = pa.array(np.where(unparsable, UNPARSABLE_VALUE, sms.to_numpy(zero_copy_only=False)))
    push_draw = _uniform(seed, ids, "push")
    push_stated = push_draw < PUSH_STATED_SHARE
    push = push_draw < PUSH_STATED_SHARE * PUSH_SHARE_OF_STATED
    return (
        customers.append_column("email_consent", _spelled(email, everyone))
        .append_column("sms_consent", sms)
        .append_column("push_consent", _spelled(push, push_stated))
    )
