"""`pullzone cluster status`: every node of a cluster, read from NATS itself (the node
registry and the stream), so it works whichever nodes are down."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pullzone.bus.jetstream import BusUnavailable, JetStreamBus
from pullzone.cli.connection import print_json
from pullzone.cli.output import fail, out

cluster_app = typer.Typer(
    help="Look at a cluster of nodes sharing one NATS JetStream.", no_args_is_help=True
)

LATE = 5.0  # seconds without a heartbeat before a node shows as late


async def _status(servers: list[str]) -> tuple[int, list[dict[str, Any]]]:
    bus = await JetStreamBus.connect(servers, "pullzone-status", role="tool", observe=True)
    try:
        last = await bus.last_stream_seq()
        nodes = await bus.nodes()
    finally:
        await bus.close()
    now = time.time()
    rows = [
        {
            "node": node["node"],
            "role": node.get("role", "?"),
            "applied": int(node.get("applied", 0)),
            "lag": max(0, last - int(node.get("applied", 0))),
            "quarantined": int(node.get("quarantined", 0)),
            # Events it needed aged out of the stream, no snapshot restored yet.
            "missed_events": bool(node.get("missed_events", False)),
            "age": round(max(0.0, now - float(node["at"])), 1),
            "edge": node.get("edge"),
            "api": node.get("api"),
            "version": node.get("version"),
            # An edge's: each live shield's connect time from it, ms (None: unreachable).
            "shields": node.get("shields"),
            # A shield's: responses a second lately, their hit ratio, open connections.
            "load": node.get("load"),
        }
        for node in nodes
    ]
    return last, rows


def _reach(shields: dict[str, float | None] | None) -> Text:
    """An edge's shields as it reaches them: `shield-1 0.3 ms`, or unreachable in red."""
    text = Text()
    for i, (node, ms) in enumerate(sorted((shields or {}).items())):
        if i:
            text.append(", ")
        if ms is None:
            text.append(f"{node} unreachable", style="red")
        else:
            text.append(f"{node} {ms:.1f} ms")
    return text


def _load(load: dict[str, Any] | None) -> str:
    """A shield's load: `12.5 req/s, 96 % hits, 4 connections`."""
    if not load:
        return ""
    ratio = load.get("hit_ratio")
    hits = "no requests" if ratio is None else f"{ratio:.0%} hits"
    return f"{load['per_second']:g} req/s, {hits}, {load['connections']} connections"


@cluster_app.command()
def status(
    cluster: Annotated[
        str,
        typer.Option(
            "--cluster",
            envvar="PULLZONE_NATS_URL",
            metavar="nats://HOST:PORT[,…]",
            help="The cluster's NATS servers.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every node heard from in the last 15 s: its role, the last event it applied, how
    far behind the stream it is (lag), how many events it could not apply and set aside
    (quarantined) and when it last said so (age); for an edge, how it reaches each
    origin shield, and for a shield, its load."""
    servers = [url.strip() for url in cluster.split(",") if url.strip()]
    try:
        last, rows = asyncio.run(_status(servers))
    except BusUnavailable as exc:
        fail(f"cannot read the cluster: {exc}")
    if as_json:
        print_json({"stream_last_seq": last, "nodes": rows})
        return
    if not rows:
        fail(f"no node has reported in the last 15 s (the stream is at event {last})")
    table = Table(header_style="bold", title=f"stream at event {last}")
    columns: tuple[str, ...] = ("node", "role", "applied", "lag", "quarantined", "last contact")
    columns += ("edge", "api")
    shielded = any(row["shields"] for row in rows)
    if shielded:
        columns += ("shields",)
    loaded = any(row["load"] for row in rows)
    if loaded:
        columns += ("load",)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        late = row["age"] > LATE
        table.add_row(
            row["node"],
            row["role"],
            str(row["applied"]),
            Text(str(row["lag"]), style="yellow" if row["lag"] else "green"),
            Text(str(row["quarantined"]), style="red" if row["quarantined"] else ""),
            Text(f"{row['age']:.1f} s ago", style="red" if late else ""),
            row["edge"] or "",
            row["api"] or "",
            *([_reach(row["shields"])] if shielded else []),
            *([_load(row["load"])] if loaded else []),
        )
    out.print(table)
