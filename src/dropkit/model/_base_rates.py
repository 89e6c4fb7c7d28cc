"""The base rate of each dropout site, which relative settings and schedules scale.

Like ``initial_lr`` in a learning-rate scheduler: the rate a site had when dropkit first scaled it,
or the rate last set absolutely. A rate changed by other code since dropkit last wrote it becomes
the new base, so the record never overrides a user's own assignment.
"""

from __future__ import annotations

import weakref
from typing import Any

from dropkit.model.sites import DropoutSite, rate_value

#: (id(owner), attribute) -> (a weak reference to the owner, base rate, rate dropkit last wrote).
_RECORDS: dict[tuple[int, str], tuple[weakref.ref[Any], float, float]] = {}


def base_rate(site: DropoutSite) -> float:
    """The base rate of ``site``: the recorded one, unless the rate was changed elsewhere since."""
    current = rate_value(site.owner, site.attribute)
    record = _RECORDS.get((id(site.owner), site.attribute))
    if record is None or record[0]() is not site.owner or record[2] != current:
        return current
    return record[1]


def remember(site: DropoutSite, base: float, written: float) -> None:
    """Record ``base`` as the base rate of ``site``, after dropkit wrote ``written`` there."""
    key = (id(site.owner), site.attribute)
    try:
        reference = weakref.ref(site.owner, lambda _: _RECORDS.pop(key, None))
    except TypeError:  # an owner that cannot be weakly referenced keeps no record
        return
    _RECORDS[key] = (reference, base, written)
