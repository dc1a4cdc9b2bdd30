"""The built-in authorization server: SMART Backend Services tokens, bound to the client's
certificate (RFC 8705), and UDAP trusted dynamic client registration.

One module per concern: `config` (endpoints, limits), `signing` (the server's keys), `replay`
(used JWT ids), `assertions` (private_key_jwt), `issuance` (access tokens), `registration` (UDAP),
`discovery` (well-known documents), `views` and `urls`.
"""
