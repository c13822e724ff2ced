// The pullzone dashboard: plain JavaScript over the public API (/v2), no build step.
// The API key lives in sessionStorage (this tab only) and goes out only as X-API-Key.
"use strict";

(() => {
  const KEY = "pullzone.apiKey";
  const REFRESH_MS = 5000;
  // Stacking order of the chart, bottom up; colours are in dashboard.css (.s-HIT, ...).
  const STATUSES = ["HIT", "STALE", "REVALIDATED", "EXPIRED", "MISS", "BYPASS"];
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat("en");

  let zones = []; // the zones of /v2/zones/http/pull, each with its row of /v2/stats
  let selected = null; // the selected zone's id, or null for all zones
  // Cluster mode: the node whose figures are shown, or null for the cluster's total.
  let node = null;
  const SPANS = { 3600: "Last hour", 86400: "Last 24 hours", 604800: "Last 7 days" };
  let session = 0; // bumped on sign-out: answers of an older session are dropped
  let refreshes = 0; // only the latest refresh renders and schedules the next one
  let timer = null;

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // One API call: the answer's JSON on success; else an ApiError with the API's message.
  async function api(path, { method = "GET", body } = {}) {
    const own = session;
    const headers = { "X-API-Key": sessionStorage.getItem(KEY) || "" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`/v2${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (err) {
      throw new ApiError(0, `the API did not answer: ${err.message}`);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      // not JSON: reported below by status
    }
    if (own !== session) throw new ApiError(-1, "signed out");
    if (!response.ok || !data || data.result !== "success") {
      const message = data && typeof data.message === "string"
        ? data.message
        : `HTTP ${response.status} ${response.statusText}`.trim();
      throw new ApiError(response.status, message);
    }
    return data;
  }

  // --- formatting ----------------------------------------------------------------------

  function bytes(n) {
    if (n === undefined || n === null) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  }

  const count = (n) => (n === undefined || n === null ? "—" : number.format(n));
  const ratio = (r) => (r === undefined || r === null ? "—" : `${(r * 100).toFixed(1)}%`);
  const plural = (n, word) => `${number.format(n)} ${word}${n === 1 ? "" : "s"}`;
  const clock = (seconds) => new Date(seconds * 1000).toTimeString().slice(0, 5);

  function el(tag, attrs = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function svg(tag, attrs = {}, text = "") {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text) node.textContent = text;
    return node;
  }

  // --- signing in and out ----------------------------------------------------------------

  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    $("login-error").textContent = "";
    try {
      await api("/zones/http/pull");
    } catch (err) {
      signOut(err.message);
      return;
    }
    $("login").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    await refresh();
  }

  function signOut(message = "") {
    session += 1;
    refreshes += 1;
    clearTimeout(timer);
    sessionStorage.removeItem(KEY);
    zones = [];
    selected = null;
    node = null;
    $("zones").tBodies[0].replaceChildren();
    $("nodes").tBodies[0].replaceChildren();
    $("nodes-panel").hidden = true;
    $("node-picker").hidden = true;
    $("history").tBodies[0].replaceChildren();
    $("chart").replaceChildren();
    $("zone-select").replaceChildren(el("option", { value: "" }, "All zones"));
    for (const id of ["error", "since", "chart-summary", "purge-status", "purge-error",
      "unreachable"]) {
      $(id).textContent = "";
    }
    $("app").hidden = true;
    $("zone-panel").hidden = true;
    $("sign-out").hidden = true;
    $("login").hidden = false;
    $("api-key").value = "";
    $("login-error").textContent = message;
    $("api-key").focus();
  }

  // --- refreshing ----------------------------------------------------------------------

  // The figures shown: the chosen node's in a cluster, else the answer's own (the total).
  function figuresOf(stats) {
    if (node !== null && stats.nodes && stats.nodes[node]) return stats.nodes[node];
    return stats;
  }

  async function refresh() {
    clearTimeout(timer);
    const mine = ++refreshes;
    const span = Number($("range-select").value);
    const to = Math.ceil(Date.now() / 1000);
    const from = `from=${to - span}&to=${to}`; // both: the span is never over 7 days
    try {
      const [list, stats] = await Promise.all([
        api("/zones/http/pull"),
        api(`/stats?${from}`),
      ]);
      if (mine !== refreshes) return;
      renderNodes(stats);
      const shown = figuresOf(stats);
      const rows = new Map(shown.zones.map((row) => [row.id, row]));
      zones = list.zones.map((zone) => ({ ...zone, stats: rows.get(zone.id) }));
      if (selected !== null && !zones.some((zone) => zone.id === selected)) select(null);
      let history = shown.history;
      let purges = null;
      if (selected !== null) {
        const [zoneStats, purged] = await Promise.all([
          api(`/stats?zone=${selected}&${from}`),
          api(`/zones/http/pull/${selected}/purges`),
        ]);
        if (mine !== refreshes) return;
        history = figuresOf(zoneStats).history;
        purges = purged.purges;
      }
      renderZones();
      renderChart(history, SPANS[span]);
      if (purges !== null) renderHistory(purges);
      const since = shown.since.replace("T", " ").replace("Z", " UTC");
      $("since").textContent = `Counting since ${since}`;
      $("error").textContent = "";
    } catch (err) {
      if (mine !== refreshes) return;
      if (err.status === 401) {
        signOut(err.message);
        return;
      }
      $("error").textContent = err.message;
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  // Cluster mode: one row per edge, then the total; the node picker lists the edges.
  function renderNodes(stats) {
    const cluster = stats.nodes !== undefined;
    $("nodes-panel").hidden = !cluster;
    $("node-picker").hidden = !cluster;
    if (!cluster) return;
    const names = Object.keys(stats.nodes);
    if (node !== null && !names.includes(node)) node = null;
    const picker = $("node-select");
    const shape = names.join(" ");
    if (picker.dataset.shape !== shape) {
      picker.replaceChildren(
        el("option", { value: "" }, "Cluster total"),
        ...names.map((name) => el("option", { value: name }, name)),
      );
      picker.dataset.shape = shape;
    }
    picker.value = node === null ? "" : node;
    const row = (name, figures, total) => {
      const tr = el("tr", { "data-node": name });
      if (total) tr.classList.add("total");
      const head = el("th", { scope: "row" });
      if (total) {
        head.textContent = name;
      } else {
        const choose = el("button", { type: "button", class: "link", title: "Show this node" });
        choose.textContent = name;
        choose.addEventListener("click", () => chooseNode(name === node ? null : name));
        head.append(choose);
      }
      const sum = (field) => figures.zones.reduce((n, z) => n + z[field], 0);
      const requests = sum("requests");
      const cells = {
        requests: count(requests),
        hit_ratio: ratio(requests ? sum("hits") / requests : null),
        bytes: bytes(sum("bytes")),
        cache: `${bytes(sum("cache_bytes"))} (${plural(sum("cache_objects"), "object")})`,
        span: count(figures.history.requests.reduce((a, b) => a + b, 0)),
      };
      tr.append(head);
      for (const [field, text] of Object.entries(cells)) {
        tr.append(el("td", { "data-field": field, class: "num" }, text));
      }
      tr.classList.toggle("selected", name === node);
      return tr;
    };
    $("nodes").tBodies[0].replaceChildren(
      ...names.map((name) => row(name, stats.nodes[name], false)),
      row("Cluster total", stats.total, true),
    );
    $("unreachable").textContent = stats.unreachable.length
      ? "Not answering (not counted): " + stats.unreachable.map((name) =>
        stats.last_heard && stats.last_heard[name]
          ? `${name} (last heard ${stats.last_heard[name]})` : name).join(", ")
      : "";
  }

  function chooseNode(name) {
    node = name;
    $("node-select").value = name === null ? "" : name;
    refresh();
  }

  function renderZones() {
    const body = $("zones").tBodies[0];
    const shape = zones.map((z) => [z.id, z.name, z.fqdn, z.status].join(" ")).join("\n");
    if (body.dataset.shape !== shape) {
      body.replaceChildren(...zones.map(zoneRow));
      body.dataset.shape = shape;
      const choice = $("zone-select");
      choice.replaceChildren(
        el("option", { value: "" }, "All zones"),
        ...zones.map((zone) => el("option", { value: zone.id }, `${zone.name} (${zone.fqdn})`)),
      );
      choice.value = selected === null ? "" : String(selected);
    }
    for (const zone of zones) {
      const row = body.querySelector(`tr[data-zone-id="${zone.id}"]`);
      const s = zone.stats || {};
      const cells = {
        requests: count(s.requests),
        hit_ratio: ratio(s.hit_ratio),
        bytes: bytes(s.bytes),
        cache: s.cache_bytes === undefined
          ? "—"
          : `${bytes(s.cache_bytes)} (${plural(s.cache_objects, "object")})`,
      };
      for (const [field, text] of Object.entries(cells)) {
        row.querySelector(`[data-field="${field}"]`).textContent = text;
      }
      row.classList.toggle("selected", zone.id === selected);
      row.querySelector("button").setAttribute("aria-pressed", String(zone.id === selected));
    }
    $("no-zones").hidden = zones.length > 0;
  }

  function zoneRow(zone) {
    const row = el("tr", { "data-zone-id": zone.id });
    const button = el("button", { type: "button", class: "link", title: "Show this zone" });
    button.textContent = zone.name;
    button.addEventListener("click", () => choose(zone.id === selected ? null : zone.id));
    const name = el("th", { scope: "row" });
    name.append(button);
    if (zone.status && zone.status !== "Enabled") {
      name.append(" ", el("span", { class: "muted" }, `(${zone.status})`));
    }
    row.append(name, el("td", { "data-field": "fqdn" }, zone.fqdn));
    for (const field of ["requests", "hit_ratio", "bytes", "cache"]) {
      row.append(el("td", { "data-field": field, class: "num" }));
    }
    return row;
  }

  // Requests by cache status: one stacked bar per bucket (a minute or an hour) of the span.
  function renderChart(series, spanText) {
    const chart = $("chart");
    const [width, height, left, bottom, top] = [960, 200, 44, 22, 8];
    const present = Object.keys(series.statuses);
    const order = [
      ...STATUSES.filter((s) => present.includes(s)),
      ...present.filter((s) => !STATUSES.includes(s)).sort(),
    ];
    const minutes = series.requests.length;
    const when = (seconds) => (series.step < 3600 ? clock(seconds)
      : `${new Date(seconds * 1000).toDateString().slice(4, 10)} ${clock(seconds)}`);
    const totals = Array.from({ length: minutes }, (_, i) =>
      order.reduce((sum, s) => sum + (series.statuses[s][i] || 0), 0));
    const peak = Math.max(0, ...totals);
    const ceiling = niceCeiling(peak);
    const plotH = height - bottom - top;
    const slot = (width - left) / Math.max(minutes, 1);
    const y = (n) => top + plotH - (n / ceiling) * plotH;

    const parts = [];
    for (const tick of [0, ceiling / 2, ceiling]) {
      parts.push(svg("line", { x1: left, x2: width, y1: y(tick), y2: y(tick), class: "grid" }));
      parts.push(svg("text", { x: left - 6, y: y(tick) + 4, class: "axis", "text-anchor": "end" },
        number.format(tick)));
    }
    for (let i = 0; i < minutes; i += 1) {
      if (!totals[i]) continue;
      const bar = svg("g");
      const at = series.start + i * series.step;
      const detail = order
        .filter((s) => series.statuses[s][i])
        .map((s) => `${s} ${series.statuses[s][i]}`);
      bar.append(svg("title", {}, `${when(at)}: ${detail.join(", ")}`));
      let base = 0;
      for (const s of order) {
        const n = series.statuses[s][i] || 0;
        if (!n) continue;
        bar.append(svg("rect", {
          x: left + i * slot + 1, width: Math.max(slot - 2, 1),
          y: y(base + n), height: y(base) - y(base + n),
          class: STATUSES.includes(s) ? `s-${s}` : "s-other",
        }));
        base += n;
      }
      parts.push(bar);
    }
    if (minutes) {
      // Local times of the window's start, middle and end.
      for (const i of [0, Math.floor(minutes / 2), minutes]) {
        const anchor = i === 0 ? "start" : i === minutes ? "end" : "middle";
        parts.push(svg("text", { x: left + i * slot, y: height - 6, class: "axis",
          "text-anchor": anchor }, when(series.start + i * series.step)));
      }
    }
    if (!peak) {
      parts.push(svg("text", { x: (width + left) / 2, y: top + plotH / 2, class: "empty",
        "text-anchor": "middle" }, `No requests: ${spanText.toLowerCase()}`));
    }
    chart.replaceChildren(...parts);

    const summary = $("chart-summary");
    let scope = selected === null ? "all zones" : zoneById(selected)?.name || `zone ${selected}`;
    if (node !== null) scope += ` on ${node}`;
    const items = order.map((s) => {
      const item = el("span", { class: "item" });
      const colour = STATUSES.includes(s) ? s : "other";
      item.append(el("span", { class: `swatch s-${colour}`, "aria-hidden": "true" }));
      item.append(`${s} ${number.format(series.statuses[s].reduce((a, b) => a + b, 0))}`);
      return item;
    });
    const listed = items.flatMap((item, i) => (i ? [" ", item] : [item]));
    summary.replaceChildren(`${spanText}, ${scope}: `, ...(items.length ? listed : ["no requests"]));
  }

  // The top of the y axis: a round number, even so that its half is a whole number too.
  function niceCeiling(n) {
    if (n <= 4) return 4;
    if (n <= 10) return 10;
    const magnitude = 10 ** Math.floor(Math.log10(n));
    return [1, 2, 5, 10].find((step) => step * magnitude >= n) * magnitude;
  }

  function renderHistory(purges) {
    const body = $("history").tBodies[0];
    body.replaceChildren(...purges.map((p) => {
      const row = el("tr", { "data-purge-id": p.id });
      let what;
      if (p.all) {
        what = "whole zone";
      } else {
        const items = [...p.files, ...p.tags.map((t) => `tag:${t}`)];
        what = items.slice(0, 5).join(" ");
        if (items.length > 5) what += ` and ${items.length - 5} more`;
      }
      let kind = p.delete ? "delete" : "soft";
      if (p.all && p.delete) kind += p.reclaimed_at ? ", reclaimed" : ", reclaiming";
      row.append(
        el("td", { class: "num" }, String(p.id)),
        el("td", {}, p.created_at),
        el("td", { class: "what" }, what),
        el("td", {}, kind),
        el("td", { class: "num" }, count(p.matched)),
      );
      return row;
    }));
    $("no-history").hidden = purges.length > 0;
  }

  // --- the selected zone and purging -----------------------------------------------------

  const zoneById = (id) => zones.find((zone) => zone.id === id);

  function select(id) {
    selected = id;
    $("zone-select").value = id === null ? "" : String(id);
    $("purge-confirm").value = "";
    $("purge-all").disabled = true;
    $("purge-status").textContent = "";
    $("purge-error").textContent = "";
    $("history").tBodies[0].replaceChildren();
    const zone = id === null ? null : zoneById(id);
    $("zone-panel").hidden = !zone;
    $("block-status").textContent = "";
    $("block-error").textContent = "";
    shownBlock = null;
    if (zone) {
      $("zone-title").textContent = `Zone ${zone.name} (${zone.fqdn})`;
      $("confirm-word").textContent = zone.alias;
      renderBlock();
    }
  }

  // The user picks a zone (or all zones): show it at once, then fetch its figures.
  function choose(id) {
    select(id);
    renderZones();
    refresh();
  }

  async function purge(body) {
    const zone = zoneById(selected);
    if (!zone) return;
    const query = $("purge-delete").checked ? "?delete=true" : "";
    const buttons = [$("purge-submit"), $("purge-all")];
    const wasDisabled = buttons.map((b) => b.disabled);
    buttons.forEach((b) => { b.disabled = true; });
    $("purge-status").textContent = "Purging…";
    $("purge-error").textContent = "";
    let ok = false;
    try {
      const url = `/zones/http/pull/${zone.id}/purge${query}`;
      const answer = await api(url, { method: "POST", body });
      let text = `${answer.message}: purge ${answer.id}`;
      if (answer.purged !== undefined) text += `, ${plural(answer.purged, "object")} matched`;
      if (answer.pending && answer.pending.length) {
        text += `; not yet confirmed by ${answer.pending.join(", ")}`;
      }
      $("purge-status").textContent = text;
      ok = true;
    } catch (err) {
      $("purge-status").textContent = "";
      if (err.status === 401) {
        signOut(err.message);
        return;
      }
      $("purge-error").textContent = err.message;
    }
    buttons.forEach((b, i) => { b.disabled = wasDisabled[i]; });
    if (ok) {
      $("purge-confirm").value = "";
      $("purge-all").disabled = true;
      if (body !== undefined) {
        $("purge-paths").value = "";
        $("purge-tags").value = "";
      }
    }
    await refresh();
  }

  function purgeListed(event) {
    event.preventDefault();
    const files = $("purge-paths").value.split("\n").map((s) => s.trim()).filter(Boolean);
    const tags = $("purge-tags").value.split(/[\s,]+/).filter(Boolean);
    if (!files.length && !tags.length) {
      // An empty body would purge the whole zone: that takes the confirmation below.
      $("purge-status").textContent = "";
      $("purge-error").textContent =
        "Enter paths or tags to purge (the whole zone is purged below).";
      return;
    }
    const body = {};
    if (files.length) body.files = files;
    if (tags.length) body.tags = tags;
    purge(body);
  }

  // --- the selected zone's settings, one block at a time ------------------------------------

  // The blocks the form edits, each through its own route (POST …/{id}/{block}); fields the
  // API sets itself are shown, not edited.
  const BLOCKS = ["cache", "edge", "securetoken", "domainlock", "geoblock", "ipaccess",
    "useragent", "bwlimit", "originip", "shield"];
  const READ_ONLY = new Set(["active", "session", "cacheInSecs", "cacheInMins",
    "expiryInSecs", "expiryInMins"]);
  let shownBlock = null; // "zone id/block" the fields were built for

  function renderBlock(force = false) {
    const zone = zoneById(selected);
    const name = $("block-select").value;
    if (!zone || !zone[name]) return;
    const shown = `${zone.id}/${name}`;
    if (shown === shownBlock && !force) return; // keep what the user is typing
    shownBlock = shown;
    const fields = Object.entries(zone[name]).map(([field, value]) => {
      const id = `block-${field}`;
      const label = el("label", { for: id }, field);
      if (READ_ONLY.has(field)) {
        return el("p", { class: "muted", "data-field": field }, `${field}: ${value}`);
      }
      if (value === "Y" || value === "N") {
        const box = el("input", { id, type: "checkbox", "data-field": field, "data-flag": "" });
        box.checked = value === "Y";
        const wrap = el("label", { class: "check" });
        wrap.append(box, ` ${field}`);
        return wrap;
      }
      const input = el("input", { id, type: "text", "data-field": field, spellcheck: "false" });
      input.value = Array.isArray(value) ? value.join(",") : String(value);
      const wrap = el("div");
      wrap.append(label, input);
      return wrap;
    });
    $("block-fields").replaceChildren(...fields);
  }

  async function saveBlock(event) {
    event.preventDefault();
    const zone = zoneById(selected);
    const name = $("block-select").value;
    if (!zone) return;
    const body = {};
    for (const input of $("block-fields").querySelectorAll("input[data-field]")) {
      const field = input.dataset.field;
      body[field] = "flag" in input.dataset ? (input.checked ? "Y" : "N") : input.value;
    }
    $("block-save").disabled = true;
    $("block-status").textContent = "Saving…";
    $("block-error").textContent = "";
    try {
      const answer = await api(`/zones/http/pull/${zone.id}/${name}`, { method: "POST", body });
      Object.assign(zone, answer.zone);
      $("block-status").textContent = `${answer.message}: ${name}`;
      renderBlock(true);
    } catch (err) {
      $("block-status").textContent = "";
      if (err.status === 401) {
        signOut(err.message);
        return;
      }
      $("block-error").textContent = err.message;
    }
    $("block-save").disabled = false;
  }

  // --- wiring ------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (key) signIn(key);
    });
    $("sign-out").addEventListener("click", () => signOut());
    $("zone-select").addEventListener("change", (event) => {
      choose(event.target.value === "" ? null : Number(event.target.value));
    });
    $("node-select").addEventListener("change", (event) => {
      chooseNode(event.target.value === "" ? null : event.target.value);
    });
    $("range-select").addEventListener("change", () => refresh());
    $("purge-form").addEventListener("submit", purgeListed);
    $("purge-confirm").addEventListener("input", () => {
      const zone = zoneById(selected);
      $("purge-all").disabled = !zone || $("purge-confirm").value.trim() !== zone.alias;
    });
    $("purge-all").addEventListener("click", () => purge(undefined));
    $("block-select").replaceChildren(
      ...BLOCKS.map((name) => el("option", { value: name }, name)),
    );
    $("block-select").addEventListener("change", () => {
      $("block-status").textContent = "";
      $("block-error").textContent = "";
      renderBlock();
    });
    $("block-form").addEventListener("submit", saveBlock);
    if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
  });
})();
