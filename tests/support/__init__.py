"""Test harness: real SIP peers (sipp, baresip) and audio analysis.

See tests/support/README.md for how to use each helper and the quirks of
the peer versions installed on Debian 12 (sipp 3.6.1, baresip 1.0.0).
"""
