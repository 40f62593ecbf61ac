"""The planner: a pure state machine from (spec, status, observed, analysis, now) to a Decision."""
