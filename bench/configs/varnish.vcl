# Varnish as a caching reverse proxy in front of the shared origin.
# Placeholders in double braces are filled by bench/run.py.
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "{{ORIGIN_PORT}}";
}

sub vcl_recv {
    # Reference numbers for S4/S5/S6 (the bench only ever listens on 127.0.0.1).
    if (req.method == "PURGE") {
        return (purge);
    }
    if (req.method == "BAN") {
        # Whole "zone" (= Host) ban, lurker-friendly (tests obj.* only).
        ban("obj.http.x-bench-host == " + req.http.host);
        return (synth(200, "Banned"));
    }
}

sub vcl_backend_response {
    set beresp.ttl = 1h;
    set beresp.http.x-bench-host = bereq.http.host;
}

sub vcl_deliver {
    unset resp.http.x-bench-host;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
