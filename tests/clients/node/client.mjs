// A 5centscdn customer's Node client, in the style of 5centscdn's API reference examples
// (global fetch, JSON.stringify, X-API-Key); the cache block goes as a form
// (URLSearchParams: application/x-www-form-urlencoded;charset=UTF-8).
//
//   node client.mjs BASE_URL API_KEY ORIGIN_URL           create, read, update, cache, ssl
//   node client.mjs BASE_URL API_KEY ORIGIN_URL ZONE_ID   purge files, purge the zone
const [base, key, origin, zoneid] = process.argv.slice(2);

async function call(method, path, body, message) {
  const headers = { "X-API-Key": key };
  if (body !== undefined && !(body instanceof URLSearchParams)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  const response = await fetch(base + path, { method, headers, body });
  const text = await response.text();
  console.log(`> ${method} ${base + path}`);
  if (body !== undefined) console.log(`> ${body}`);
  console.log(`< ${response.status}\n< ${text}\n`);
  const answer = JSON.parse(text);
  if (response.status !== 200 || answer.result !== "success"
      || (message !== undefined && answer.message !== message)) {
    console.error(`unexpected answer to ${method} ${path}`);
    process.exit(1);
  }
  return answer;
}

const updated = "Zone updated successfully";
if (zoneid === undefined) {
  const { zone } = await call("POST", "/zones/http/pull/new",
    { _METHOD: "PUT", alias: "node-client", origin, optimize: "http" });
  await call("GET", `/zones/http/pull/${zone.id}`);
  await call("POST", `/zones/http/pull/${zone.id}`, { origin, cname: "node.clients.test" }, updated);
  await call("POST", `/zones/http/pull/${zone.id}/cache`,
    new URLSearchParams({ cache: "1h", expiry: "1d" }), updated);
  await call("POST", `/zones/http/pull/${zone.id}/ssl`, { http2: "Y", redirect: "N", mode: "S" }, updated);
} else {
  await call("POST", `/zones/http/pull/${zoneid}/purge`,
    { files: ["/clients/a.css", "/clients/c.css"] }, "Zone Purged");
  await call("POST", `/zones/http/pull/${zoneid}/purge`, undefined, "Zone Purged");
}
