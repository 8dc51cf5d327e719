"""agentlightning.integrations.crewai (placeholder until its integration lands)"""
