"""agentlightning.integrations.langchain (placeholder until its integration lands)"""
