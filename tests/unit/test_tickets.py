"""Session ticket keys shared between edge workers (edge/tickets.py): two independent
server contexts, as two spawned workers have, resume each other's TLS 1.3 sessions once
they hold the node's key file, and not before; in memory (BIOs), no sockets."""

from __future__ import annotations

import gc
import ssl
from pathlib import Path

import pytest
import trustme

from pullzone.edge import tickets, tls


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A listener's context as the edge builds it (no certificate), switched by SNI to a
    certificate's context as edge/tls.py does: the ticket keys are the listener's."""
    leaf = ca.issue_cert("www.example.test")
    zone = tls._server_context(tls.ALPN_HTTP1)
    leaf.configure_cert(zone)
    listener = tls._server_context(tls.ALPN_HTTP1)

    def switch(conn: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        conn.context = zone

    listener.sni_callback = switch
    listener._zone = zone  # type: ignore[attr-defined]  # kept alive with the listener
    return listener


def connect(
    server: ssl.SSLContext, client: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> ssl.SSLObject:
    """A full TLS exchange in memory, then a few bytes each way (TLS 1.3 tickets come
    after the handshake); the client's end."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="www.example.test", session=session)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = [False, False]
    for _ in range(20):
        for i, (end, out, peer_in) in enumerate(((c, c_out, s_in), (s, s_out, c_in))):
            if not done[i]:
                try:
                    end.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done):
            break
    assert all(done)
    s.write(b"hello")
    c_in.write(s_out.read())
    assert c.read(5) == b"hello"
    return c


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def test_the_listeners_ssl_ctx_is_found_and_verified() -> None:
    context = tls._server_context(tls.ALPN_H2)
    keys = tickets.TicketKeys(context, Path("/nonexistent"))
    assert keys.shared
    assert not keys.refresh()  # no key file: nothing installed, nothing raised


def test_two_workers_resume_each_others_sessions_with_the_nodes_key(
    ca: trustme.CA, tmp_path: Path
) -> None:
    path = tickets.key_path(tmp_path / "run")
    tickets.write_key(path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_size == tickets.KEY_SIZE
    one, two = server_context(ca), server_context(ca)
    client = client_context(ca)

    first = connect(one, client)
    assert first.session is not None and first.session.has_ticket
    # Before: each worker has its own keys.
    assert not connect(two, client, first.session).session_reused

    for context in (one, two):
        keys = tickets.TicketKeys(context, path)
        assert keys.refresh() and not keys.refresh()  # installed once, then unchanged
    issued = connect(one, client)
    for server in (one, two, two, one):
        assert connect(server, client, issued.session).session_reused

    # A rotation keeps the previous key: its tickets still resume (and are renewed).
    tickets.write_key(path, keep_previous=True)
    assert path.stat().st_size == 2 * tickets.KEY_SIZE
    for context in (one, two):
        assert tickets.TicketKeys(context, path).refresh()
    renewed = connect(two, client, issued.session)
    assert renewed.session_reused
    assert renewed.session is not None and renewed.session.id != issued.session.id
    assert connect(one, client, renewed.session).session_reused

    # Two rotations on, or a key file written anew: a full handshake, then resumption.
    tickets.write_key(path, keep_previous=True)
    tickets.write_key(path)
    for context in (one, two):
        assert tickets.TicketKeys(context, path).refresh()
    again = connect(two, client, issued.session)
    assert not again.session_reused
    assert connect(one, client, again.session).session_reused


def test_the_callback_lives_as_long_as_the_context(ca: trustme.CA, tmp_path: Path) -> None:
    path = tickets.key_path(tmp_path)
    tickets.write_key(path)
    server, client = server_context(ca), client_context(ca)
    assert tickets.TicketKeys(server, path).refresh()  # no reference kept here
    gc.collect()
    issued = connect(server, client)  # OpenSSL calls the callback: still there
    assert connect(server, client, issued.session).session_reused


def test_a_worker_takes_a_rotated_key_file_once(ca: trustme.CA, tmp_path: Path) -> None:
    path = tickets.key_path(tmp_path)
    tickets.write_key(path)
    keys = tickets.TicketKeys(server_context(ca), path)
    assert keys.refresh() and not keys.refresh()
    tickets.write_key(path, keep_previous=True)
    assert keys.refresh() and not keys.refresh()
    path.write_bytes(b"short")
    assert not keys.refresh()  # a bad file is not taken: the keys held stay


def test_tls12_tickets_resume_across_workers_too(ca: trustme.CA, tmp_path: Path) -> None:
    path = tickets.key_path(tmp_path)
    tickets.write_key(path)
    one, two = server_context(ca), server_context(ca)
    for context in (one, two):
        assert tickets.TicketKeys(context, path).refresh()
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    issued = connect(one, client)
    assert issued.version() == "TLSv1.2" and issued.session is not None
    assert issued.session.has_ticket
    assert connect(two, client, issued.session).session_reused
