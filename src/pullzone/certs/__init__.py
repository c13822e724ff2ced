"""TLS certificates: the account's certificates, as 5centscdn's `/v2/account/ssl` has them,
checked when uploaded and served by the edge by SNI."""
