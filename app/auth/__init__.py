"""Identity: passwords, tokens, API keys, the authenticated principal and permissions."""
