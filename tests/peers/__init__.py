"""Real peer servers the suite starts on 127.0.0.1 (see ../shared/PEERS.md)."""
