"""Media: RTP legs, G.711, RFC 4733 DTMF, audio sources and the media clock."""
