"""SIP: sans-I/O message, transaction and dialog cores with a thin asyncio transport."""
