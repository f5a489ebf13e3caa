"""Feeds: how data gets into twinstream.

- :mod:`stream.feeds.simulator` -- synthetic patients (``twinstream simulate``);
  the physiology it draws on lives in :mod:`stream.feeds.physiology`.
- :mod:`stream.feeds.physionet` -- replay of the PhysioNet/CinC Challenge 2012
  ICU stays (``twinstream replay physionet2012``).
- :mod:`stream.feeds.wfdb_numerics` -- replay of a WFDB bedside-monitor
  numerics record (``twinstream replay wfdb PATH``).
- :mod:`stream.feeds.profiles_csv` -- patient profiles from a CSV file
  (``twinstream profiles load FILE``).

Every feed is a pure generator of :class:`~stream.feeds.producer.FeedMessage`
(no broker needed to test it); :mod:`stream.feeds.producer` paces them in
event time and sends them to Kafka.
"""

from stream.feeds.producer import FeedKind, FeedMessage

__all__ = ["FeedKind", "FeedMessage"]
