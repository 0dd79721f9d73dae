"""The validator set as state: each validator's consensus key, voting power and operator account.

Set from genesis, changed by the modules that decide power (participants, epochs: later) through
`set_validator`, which also reports the change to consensus as a ValidatorUpdate. Gov reads it to
weigh votes: an account's voting power is the sum of the powers of the validators it operates.
"""
