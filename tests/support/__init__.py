"""Test harness: real SIP peers (sipp, baresip, linphonec) and audio analysis.

See tests/support/README.md for how to use each helper and the quirks of
the peer versions installed on Debian 12 (sipp 3.6.1, baresip 1.0.0,
linphonec 5.1). Every peer process is a :class:`tests.support.peer.PeerProcess`:
a context manager, sync or async.
"""
