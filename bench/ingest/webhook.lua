-- wrk script for the ingest benchmark: POSTs the pre-signed LINE webhook
-- bodies that gen_bodies.py wrote ("<signature> <body>" per line) to
-- BENCH_PATH (/line/webhook/<channel_id>). Thread k of T sends bodies
-- k, k+T, k+2T, ..., so no two threads send the same event before the file
-- wraps around (ingest accepts a repeated webhookEventId like any other:
-- consumers drop duplicates by id).
local bodies_file = os.getenv("BENCH_BODIES")
local path = os.getenv("BENCH_PATH")
local nthreads = 0

-- Runs once per thread in the main script state: numbers the threads.
function setup(thread)
   thread:set("id", nthreads)
   nthreads = nthreads + 1
end

local sigs, bodies, n, i, step = {}, {}, 0, 0, 1

function init(args)
   for line in io.lines(bodies_file) do
      local sp = line:find(" ", 1, true)
      if sp then
         n = n + 1
         sigs[n] = line:sub(1, sp - 1)
         bodies[n] = line:sub(sp + 1)
      end
   end
   if n == 0 then
      error("no bodies in " .. tostring(bodies_file))
   end
   -- wrk's -t, which run.sh also exports: the stride between bodies.
   step = tonumber(os.getenv("BENCH_THREADS") or "1")
   i = (id or 0) % n
end

function request()
   i = i % n + 1
   local k = i
   i = i + step - 1
   return wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["X-Line-Signature"] = sigs[k],
   }, bodies[k])
end
