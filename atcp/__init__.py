"""atcp: TCP (RFC 9293) in pure Python on asyncio, carried inside UDP datagrams."""

__version__ = "0.1.0"
