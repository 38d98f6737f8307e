"""Development and demo tooling: embedded servers, realistic seed data, the demo.

Needs the ``dev`` extra (SecantusDB, moto). The archive itself (``audit_archive``) never
imports this package.
"""
