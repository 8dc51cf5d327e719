"""agentlightning.integrations.autogen (placeholder until its integration lands)"""
