"""The auth module: accounts (created on first receipt or first signature), authz grants with
message-type lists and expiry, and the seen-tx records that refuse replays until timeout."""
