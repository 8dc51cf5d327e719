"""agentlightning.integrations"""
