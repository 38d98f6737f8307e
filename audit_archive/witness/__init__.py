"""The witness the project ships (``audit-archive witness``, SPEC section 8): C2SP
tlog-witness ``add-checkpoint`` over HTTP, for auditors or a second account."""
