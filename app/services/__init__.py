"""Domain logic and the transaction boundary. No Flask request objects in here."""
