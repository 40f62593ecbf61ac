-- Argo CD health of a FineTuneRelease (finetune.dev/v1alpha1), from its status:
--   Healthy      the spec's bundle serves all traffic (Promoted, or a bundle set back to stable)
--   Progressing  a rollout moves: evals running, shadow, canary stages; or the operator has not
--                seen the latest spec yet (status.observedGeneration < metadata.generation)
--   Suspended    paused (kubectl finetune pause, or spec.paused), or held for a person's
--                decision (Inconclusive, analysis failing with onError: pause)
--   Degraded     the spec's bundle does not serve and will not without a person: Gated,
--                RolledBack, Failed, or stalled past its progress deadline
-- The message is the operator's own (status.message).
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to decide"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local function condition(kind)
  if status.conditions ~= nil then
    for _, c in ipairs(status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end

local phase = status.phase
local message = status.message or phase
local ready = condition("Ready")
local stalled = condition("Stalled")
hs.message = message
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
elseif phase == "Gated" or phase == "RolledBack" or phase == "Failed" then
  hs.status = "Degraded"
elseif stalled ~= nil and stalled.status == "True" and stalled.reason == "ProgressDeadlineExceeded" then
  hs.status = "Degraded"
elseif phase == "Paused" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
return hs
