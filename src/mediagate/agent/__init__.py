"""The image agent: a planner chooses tools step by step until the picture matches the brief.

A pure library: no database and no web framework. The HTTP surface and the engine plug-in call
:func:`mediagate.agent.runner.run_agent` with an :class:`~mediagate.agent.state.AgentState` and a
planner from :func:`mediagate.agent.planner.planner_for`.

Modules: ``state`` (the run's inputs and history), ``tools`` (the pixel work), ``tool_specs``
(what the tools accept, as JSON schema), ``rules`` and ``llm`` (the two planners, re-exported by
``planner``), ``runner`` (the loop) and ``errors``.
"""
