"""The bank module: balances, transfers, module (escrow) accounts, mint and burn, with the total
supply tracked so that sum(balances) == supply can be checked at any height."""
