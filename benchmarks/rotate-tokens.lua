-- wrk script: every request carries the next bearer token of a file, round robin, so a proxy
-- sees as many distinct tokens as the file holds (the verified-token cache misses when the
-- file is larger than the cache). Usage:
--   wrk -s rotate-tokens.lua http://127.0.0.1:8000/secure/profiles/12345 -- TOKENS_FILE
-- The requests are formatted once in init(), so wrk spends no Lua time per request beyond
-- picking the next string; each wrk thread starts at a different offset.
local requests = {}
local next_index = 0
local threads_set_up = 0

function setup(thread)
   thread:set("thread_number", threads_set_up)
   threads_set_up = threads_set_up + 1
end

function init(args)
   local path = args[1]
   if path == nil then
      error("rotate-tokens.lua: pass the tokens file after --")
   end
   for token in io.lines(path) do
      if token ~= "" then
         requests[#requests + 1] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
      end
   end
   if #requests == 0 then
      error("rotate-tokens.lua: no tokens in " .. path)
   end
   next_index = ((thread_number or 0) * 7919) % #requests
end

function request()
   next_index = next_index % #requests + 1
   return requests[next_index]
end
