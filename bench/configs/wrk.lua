-- wrk script shared by every scenario. Arguments after `--`:
--   static                      one URL (the one on the command line); fastest path in wrk
--   cycle  PATHFILE NTHREADS    each thread cycles through its share of the paths
--   cold   PATHFILE NTHREADS MINBYTES MAXBYTES
--                               each thread requests its share of the paths once, then
--                               only the URL of the command line (a cached object of
--                               another size, the sentinel); a response counts toward the
--                               share when it is not a 200 or its body size is within
--                               [MINBYTES, MAXBYTES]. When the whole share has come back
--                               the thread records the time it took, prints "COLD_DONE"
--                               and stops.
--   zipf   PATHFILE SEED        every request draws a path: line k (1-based) with
--                               probability proportional to 1/k (Zipf, s = 1.0), by binary
--                               search in a CDF built in init; each thread seeds its own
--                               generator with SEED + its id, so every server gets the
--                               same draws. Answers are counted by X-Cache (HIT or not),
--                               and the HITs so far noted every MARK answers of a thread.
--   paced  PREFIX RATE NTHREADS each thread asks for PREFIX<n>.bin, a new n every time
--                               (every request a miss), at most RATE requests per second
--                               (delay() keeps a schedule; behind it, no catch-up burst).
-- done() prints one line "WRKJSON {...}" that bench/run.py parses.

local threads = {}
local next_id = 0
MARK = 1000 -- "zipf": a thread notes its HITs so far every MARK answers

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local function now_us()
   local ffi = require("ffi")
   if not now_us_ready then
      ffi.cdef [[
         typedef struct { long tv_sec; long tv_usec; } bench_timeval;
         int gettimeofday(bench_timeval *tv, void *tz);
      ]]
      now_us_ready = true
      tv = ffi.new("bench_timeval")
   end
   ffi.C.gettimeofday(tv, nil)
   return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

function init(args)
   mode = args[1] or "static"
   share = 0
   responses = 0
   bad = 0
   elapsed_us = -1
   delay = nil -- only "paced" paces its requests
   if mode == "static" then
      request = nil
      response = nil
      return
   end
   if mode == "zipf" then
      init_zipf(args[2], tonumber(args[3]))
      return
   end
   if mode == "paced" then
      init_paced(args[2], tonumber(args[3]), tonumber(args[4]))
      return
   end
   local nthreads = tonumber(args[3])
   reqs = {}
   local i = 0
   for line in io.lines(args[2]) do
      if i % nthreads == tid then
         reqs[#reqs + 1] = wrk.format(nil, line)
      end
      i = i + 1
   end
   share = #reqs
   idx = 0
   started = nil
   min_bytes = tonumber(args[4] or "0")
   max_bytes = tonumber(args[5] or "1e18")
   sentinel = wrk.format(nil, wrk.path)
   -- wrk calls request() once on thread 0 before it runs, to check the request it
   -- builds: that call must not use up a path.
   verifying = (tid == 0)
   if mode ~= "cold" then
      response = nil
   end
end

function init_zipf(pathfile, seed)
   reqs = {}
   for line in io.lines(pathfile) do
      reqs[#reqs + 1] = wrk.format(nil, line)
   end
   local n = #reqs
   cdf = {}
   local sum = 0
   for k = 1, n do
      sum = sum + 1 / k
      cdf[k] = sum
   end
   for k = 1, n do
      cdf[k] = cdf[k] / sum
   end
   cdf[n] = 1.0
   zipf_n = n
   math.randomseed(seed + tid)
   hits = 0
   counted = 0
   marks = {}
   request = zipf_request
   response = zipf_response
end

function zipf_request()
   local u = math.random()
   local lo, hi = 1, zipf_n
   while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then
         lo = mid + 1
      else
         hi = mid
      end
   end
   return reqs[lo]
end

function zipf_response(status, headers, body)
   counted = counted + 1
   local xc = headers["X-Cache"] or headers["x-cache"] or ""
   if status == 200 and string.sub(xc, 1, 3) == "HIT" then
      hits = hits + 1
   elseif status ~= 200 then
      bad = bad + 1
   end
   if counted % MARK == 0 then
      marks[#marks + 1] = hits
   end
end

function init_paced(prefix, rate, nthreads)
   paced_prefix = prefix
   paced_n = tid
   paced_step = nthreads
   interval_us = 1000000 / rate
   next_due = nil
   request = paced_request
   response = nil
   delay = paced_delay
end

function paced_request()
   local path = paced_prefix .. paced_n .. ".bin"
   paced_n = paced_n + paced_step
   return wrk.format(nil, path)
end

function paced_delay()
   local now = now_us()
   if next_due == nil or next_due < now then
      next_due = now
   end
   local wait_us = next_due - now
   next_due = next_due + interval_us
   return math.floor(wait_us / 1000)
end

function request()
   if verifying then
      verifying = false
      return reqs[1]
   end
   if mode == "cold" then
      if started == nil then
         started = now_us()
      end
      if idx >= share then
         return sentinel
      end
   end
   idx = idx % share + 1
   return reqs[idx]
end

function response(status, headers, body)
   if status ~= 200 then
      bad = bad + 1
   elseif #body < min_bytes or #body > max_bytes then
      return -- the sentinel
   end
   responses = responses + 1
   if responses == share then
      elapsed_us = now_us() - started
      io.write("COLD_DONE\n")
      io.flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local cold = {}
   local hits, counted = 0, 0
   local marks = {}
   for _, t in ipairs(threads) do
      cold[#cold + 1] = string.format('{"share":%d,"elapsed_us":%d,"bad":%d}',
         t:get("share") or 0, t:get("elapsed_us") or -1, t:get("bad") or 0)
      hits = hits + (t:get("hits") or 0)
      counted = counted + (t:get("counted") or 0)
      marks[#marks + 1] = "[" .. table.concat(t:get("marks") or {}, ",") .. "]"
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"cold":[%s],' ..
      '"xcache":{"hit":%d,"counted":%d,"mark":%d,"marks":[%s]}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, table.concat(cold, ","), hits, counted, MARK,
      table.concat(marks, ",")))
end
