"""agentlightning.integrations.openai_agents (placeholder until its integration lands)"""
