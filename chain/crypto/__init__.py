"""Keys, addresses and hashes: secp256k1 account keys (Cosmos conventions), ed25519 node and
consensus keys, the encrypted key store. Signature checks go through `native`."""
