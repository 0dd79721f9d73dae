"""The gov module: proposals to change parameters, deposits, votes weighted by validator power,
and the tally at the end of the voting period that applies passed changes (see PROTOCOL.md)."""
