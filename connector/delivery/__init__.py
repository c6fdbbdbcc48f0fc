"""Delivery: drain an account's outbox to its destination and follow the batches until every
row is final.

``drain`` (``drain.py``) claims queued batches one at a time, oldest first, inside the off-peak
window, the daily quota and the in-flight limit (``claims.py``), and submits them through the
account's ``Destination`` (``connector.destinations.base``). ``poll`` (``poll.py``) follows the
submitted ones until final; both take every call from the account's calls per minute, kept
in the ledger for every process (``call_limit.py``). ``settle.py`` records a final batch: ``Delivered`` digests for
confirmed rows only, outcomes per row, failed rows re-queued as the profiles' current rows
(``requeue.py``, ``attempt + 1``) or dead-lettered when out of attempts. ``recovery.py``
resumes what a process that died left claimed or half re-queued: a batch is never lost and
never submitted twice within one attempt.

The engine never branches on a destination's name: what differs between Target v1, v2 and
Copernica is behind the ``Destination`` protocol.
"""

from connector.delivery.drain import drain
from connector.delivery.poll import poll
from connector.delivery.requeue import requeue_or_dead
from connector.delivery.results import DrainResult, PollResult

__all__ = ["DrainResult", "PollResult", "drain", "poll", "requeue_or_dead"]
