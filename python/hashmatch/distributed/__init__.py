"""Distributed hashmatch on Ray (the optional extra ``hashmatch[ray]``)."""
